"""Regenerate the shipped crosswalks from the sources in ../shared/data/cfs (maintainers only).

    .venv/bin/python -m sim.fromdata.crosswalks.build [SHARED_CFS_DIR]

* ``generic.csv``: keyword rules (regex) for behavioural-health, welfare, intoxication,
  homelessness, medical and fire call types, written for this project; usable for any city.
* ``san_diego.csv``: every code of SDPD's own call-type table (pd_cfs_calltypes_datasd.csv,
  ODC-PDDL), classified by the keyword rules on the code's description; the README of the
  San Diego extract names 5150, 5150V, CW and 647F as the behavioural-health-related codes.
* ``new_orleans.csv`` / ``seattle.csv``: the raw values of the Vera Institute / Two Sigma Data
  Clinic crosswalk (MIT) for that city, classified by the keyword rules, else by the Vera
  category (Behavioral Health -> crisis, Medical Emergencies -> medical, Fire -> fire).
* ``decc.csv``: exact rules for the call types the DECC README names, then the generic rules.
  (The DECC export itself is never copied into the project.)
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
OURS = "crisis-sim keyword rule (our reading, not a published map)"

# (call_type, path, include regex, exclude regex, label); first match wins.
RULES = [
    ("crisis_urgent", "co_responder",
     r"SUICID.*(ATTEMPT|IN PROG|I/P|\bIP\b|TRAUMA|INJ)|MENTAL.*(VIOLENT|URGENT|ARMED)|5150V|PSYCHIATRIC EMERGENCY VIOLENT"
     r"|BRIDGE JUMPER", None, "behavioural-health crisis with danger (suicide in progress, violent)"),
    ("crisis", "civilian", r"MENTAL|SUICID|PSYCH|BEHAVIORAL|EMOTIONAL CRISIS|CRISIS COMPLAINT|^5150$",
     r"PRISONER|INMATE", "behavioural-health crisis"),
    ("welfare_check", "civilian", r"WELFARE", r"NO WELFARE", "welfare check"),
    ("intoxicated", "civilian", r"DRUNK|INTOX|^647F$", r"DRIVER|DWI|DUI|VIOL|MINOR", "intoxicated person"),
    ("homelessness", "civilian", r"HOMELESS|TRANSIENT|ENCAMPMENT", None, "homelessness-related"),
    ("medical", "police", r"\bALS\b|\bBLS\b|\bEMS\b|\bCPR\b|MEDICAL|AMBULANCE|OVERDOSE|CARDIAC|UNCONSCIOUS|BREATHING"
     r"|SEIZURE|STROKE|CHEST PAIN|INJURED PERSON|\bFALL\b", r"ALARM", "medical emergency"),
    ("fire", "police", r"\bFIRE\b|SMOKE|GAS LEAK|\bCO ALARM\b|ELEVATOR|HAZMAT|EXPLOSION|WIRES DOWN", r"FIREARM",
     "fire and rescue"),
]


def classify(text: str) -> tuple[str, str, str] | None:
    t = text.strip().upper()
    for ctype, path, inc, exc, _label in RULES:
        if re.search(inc, t) and not (exc and re.search(exc, t)):
            return ctype, path, inc
    return None


def labels() -> dict[str, str]:
    return {c: lab for c, _p, _i, _e, lab in RULES} | {"other_police": "other police call"}


def generic_rows() -> list[dict]:
    rows = []
    for ctype, path, inc, exc, label in RULES:
        pattern = inc if exc is None else f"^(?!.*({exc})).*({inc})"
        rows.append(dict(raw_value=pattern, call_type=ctype, path=path, match="regex", category="",
                         label=label, source=OURS))
    return rows


def _city_rows(values: pd.DataFrame, describe, fallback) -> list[dict]:
    lab = labels()
    rows = []
    for r in values.itertuples():
        hit = classify(describe(r))
        if hit:
            ctype, path, inc = hit
            src = f"{OURS}: /{inc[:40]}/ on '{describe(r)}'"
        else:
            ctype, path, src = fallback(r)
        rows.append(dict(raw_value=r.raw_value, call_type=ctype, path=path, match="exact",
                         category=getattr(r, "category", ""), label=lab.get(ctype, ""), source=src))
    return rows


def main(shared: Path) -> None:
    pd.DataFrame(generic_rows()).to_csv(HERE / "generic.csv", index=False)

    sd = pd.read_csv(shared / "san_diego" / "pd_cfs_calltypes_datasd.csv", dtype=str, keep_default_na=False,
                     encoding="utf-8-sig").iloc[:, :2]
    sd.columns = ["raw_value", "description"]
    sd = sd[sd["raw_value"].str.strip() != ""].drop_duplicates("raw_value")
    rows = _city_rows(sd, lambda r: r.description,
                      lambda r: ("other_police", "police", f"SDPD call-type table: '{r.description}' (not crisis-related)"))
    for r, d in zip(rows, sd["description"]):
        r["category"] = d
    pd.DataFrame(rows).to_csv(HERE / "san_diego.csv", index=False)

    vera = pd.read_csv(shared / "crosswalks" / "vera_two_sigma" / "call_type_to_category.csv", dtype=str,
                       keep_default_na=False)
    by_cat = {"Behavioral Health": ("crisis", "civilian"), "Medical Emergencies": ("medical", "police"),
              "Medical": ("medical", "police"), "Fire": ("fire", "police")}
    for city, out in (("New Orleans", "new_orleans.csv"), ("Seattle", "seattle.csv")):
        v = vera[vera["city"] == city].copy()
        v["raw_value"] = v["raw_value"].str.strip()
        v = v[v["raw_value"] != ""].drop_duplicates("raw_value")

        def fallback(r):
            ctype, path = by_cat.get(r.category, ("other_police", "police"))
            return ctype, path, f"Vera/Two Sigma crosswalk (MIT), {city}: category '{r.category or 'unmapped'}'"
        pd.DataFrame(_city_rows(v, lambda r: r.raw_value, fallback)).to_csv(HERE / out, index=False)

    lab = labels()
    named = [("MENTAL HEALTH CASE", "crisis"), ("WELFARE CHECK", "welfare_check"),
             ("DIP - DRUNK/INTOX PERSON", "intoxicated"), ("SUICIDE IN PROG NO INJ", "crisis_urgent"),
             ("PSYCHIATRIC EMERGENCY ALS 1", "crisis"), ("OVERDOSE ALS", "medical")]
    paths = {c: p for c, p, *_ in RULES}
    rows = [dict(raw_value=v, call_type=c, path=paths[c], match="exact", category="", label=lab[c],
                 source="DECC README (../shared/data/cfs/decc_psap): named behavioural-health-related type")
            for v, c in named] + generic_rows()
    pd.DataFrame(rows).to_csv(HERE / "decc.csv", index=False)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[4] / "shared" / "data" / "cfs")
