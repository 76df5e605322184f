"""Shipped call-type crosswalks (CSV) and the script that regenerates them (build.py)."""
