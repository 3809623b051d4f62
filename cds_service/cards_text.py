"""Wording of the cards: evidence statements and citations.

Statements paraphrase the evidence table of clinical-rules.md (its sources ask that
wording be verified before quoting, so nothing here is a verbatim quote). Citations
name journal, year and DOI, not authors.
"""

from __future__ import annotations

SOURCE_LABEL = "IDSA 2015 guideline: native vertebral osteomyelitis in adults"
SOURCE_URL = "https://doi.org/10.1093/cid/civ482"

CITATIONS: dict[str, str] = {
    "IDSA-2015": (
        "IDSA 2015 Clinical Practice Guidelines for the Diagnosis and Treatment of Native "
        "Vertebral Osteomyelitis in Adults. Clin Infect Dis 2015;61(6):e26-e46. "
        "[doi:10.1093/cid/civ482](https://doi.org/10.1093/cid/civ482)"
    ),
    "AHN-2020": "BMC Musculoskelet Disord 2020;21:428",
    "KOWALSKI-2007": "AJNR Am J Neuroradiol 2007;28:693-699",
    "HECQUET-2021": "J Clin Med 2021;10:2690",
}

# rule id (or recommendation) -> (statement, citation ids)
STATEMENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "advise-against": (
        "The IDSA 2015 guideline recommends against routine follow-up MRI in NVO when the "
        "clinical and laboratory response is favourable (strong recommendation, low-quality "
        "evidence). At 4-8 weeks, bone can look equivocal or worse on MRI while soft tissue "
        "improves, and in one series a third of patients who recovered looked worse on follow-up "
        "imaging.",
        ("IDSA-2015", "KOWALSKI-2007", "HECQUET-2021"),
    ),
    "neuro": (
        "A new neurologic deficit calls for urgent MRI to look for an epidural abscess or cord "
        "compression. The IDSA 2015 guideline advises follow-up MRI of the epidural and "
        "paraspinal soft tissues when treatment failure is suspected (strong, low).",
        ("IDSA-2015",),
    ),
    "complication": (
        "The IDSA 2015 guideline advises follow-up MRI, assessing the epidural and paraspinal "
        "soft tissues, when the response is poor or treatment failure is suspected (strong, low).",
        ("IDSA-2015",),
    ),
    "uncertain-dx": (
        "The advice against routine follow-up imaging (IDSA 2015) is for a patient with NVO "
        "who responds to treatment; with an unconfirmed diagnosis or a coexisting mimic the "
        "diagnosis is unclear, and this service does not advise against imaging.",
        ("IDSA-2015",),
    ),
    "markers-not-responding": (
        "Unchanged or rising ESR/CRP after about 4 weeks of therapy raise suspicion of treatment "
        "failure (IDSA 2015: weak, low); this service also counts a CRP rising again after an "
        "initial decline from day 15 on. Follow-up MRI focused on the epidural and paraspinal "
        "soft tissues is then advised (strong, low). Soft-tissue change on MRI correlates best "
        "with CRP.",
        ("IDSA-2015", "AHN-2020"),
    ),
    "pain-worse": (
        "The IDSA 2015 guideline advises follow-up MRI when the clinical response is poor or "
        "treatment failure is suspected (strong, low); persistent pain alone does not prove "
        "failure (weak, low).",
        ("IDSA-2015",),
    ),
    "insufficient-data": (
        "The IDSA 2015 guideline suggests checking ESR and CRP after about 4 weeks of therapy "
        "together with a clinical assessment (weak, low); when the response is favourable, "
        "routine follow-up MRI is not recommended (strong, low).",
        ("IDSA-2015",),
    ),
    "esr-rising": (
        "Bony change on follow-up MRI correlates with ESR, soft-tissue change with CRP, so ESR "
        "can lag while the infection responds.",
        ("AHN-2020",),
    ),
}

# Short labels for a one-line summary, per red-flag rule.
SUMMARY_LABELS: dict[str, str] = {
    "neuro": "new neurologic deficit",
    "complication": "complication recorded since treatment start",
    "uncertain-dx": "diagnosis uncertain or mimic present",
    "markers-not-responding": "CRP not responding",
    "pain-worse": "pain worse",
}

HEADLINES: dict[str, str] = {
    "advise-against": (
        "Repeat imaging is not indicated now: the response to treatment is favourable."
    ),
    "support": "Repeat imaging is supported: a red flag is present.",
    "support-urgent": "Urgent imaging is supported: new neurologic deficit.",
    "insufficient-data": (
        "Not enough data to judge the response to treatment. Order CRP/ESR and document pain "
        "and neurologic status rather than imaging."
    ),
}
