"""Wording of the cards: evidence statements, citations and fixed phrases; what each
decision says of repeat imaging (one home for the summaries, the headlines and the
insufficient-data detail); the words of the suggestions and their actions.

Statements paraphrase the sources (clinical-rules.md asks that wording be verified
before quoting, so nothing here is a verbatim quote). Citations name the first author,
journal, year and DOI where one is known. Grades (strong/weak, low/moderate) are given
only where the design notes or a published summary of the guideline state them.
"""

from __future__ import annotations

from collections.abc import Sequence

from cds_service.cards.words import upper_first

SOURCE_LABEL = "IDSA 2015 guideline: native vertebral osteomyelitis in adults"
SOURCE_URL = "https://doi.org/10.1093/cid/civ482"

# The disease named once in full on every card; later mentions say "the infection".
DISEASE = "vertebral osteomyelitis (spondylodiscitis)"
# When a slow fall, or markers at the levels that predicted failure, are checked again
# (clinical-rules.md, "Slow fall" and Yoon 2010: "a repeat in 1-2 weeks"): one wording
# for the detail's remark and the summary.
REPEAT_INTERVAL = "in 1-2 weeks"

CITATIONS: dict[str, str] = {
    "IDSA-2015": (
        "Berbari EF et al. 2015 IDSA Clinical Practice Guidelines for the Diagnosis and "
        "Treatment of Native Vertebral Osteomyelitis in Adults. Clin Infect Dis "
        "2015;61(6):e26-e46. [doi:10.1093/cid/civ482](https://doi.org/10.1093/cid/civ482)"
    ),
    "ZARROUK-2007": (
        "Zarrouk V et al. Rheumatology (Oxford) 2007;46(2):292-295. "
        "[doi:10.1093/rheumatology/kel228](https://doi.org/10.1093/rheumatology/kel228)"
    ),
    "KOWALSKI-2007": "Kowalski TJ et al. AJNR Am J Neuroradiol 2007;28:693-699",
    "HECQUET-2021": (
        "Hecquet S et al. J Clin Med 2021;10:2690. "
        "[doi:10.3390/jcm10122690](https://doi.org/10.3390/jcm10122690)"
    ),
    "AHN-2020": "Ahn KS et al. BMC Musculoskelet Disord 2020;21:428",
    "YOON-2010": "Yoon SH et al. Eur Spine J 2010;19:575-582",
    "PARK-2016": "Park KH et al. Clin Infect Dis 2016;62:1262-1269",
}

# The head of a card's evidence, and the line of the sources it cites.
EVIDENCE = "**Evidence**"


def sources(citations: list[str]) -> str:
    return "Sources: " + "; ".join(citations) + "."


# rule id (or recommendation, or note code) -> (statement, citation ids)
STATEMENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "advise-against": (
        "IDSA 2015 recommends against routine follow-up MRI when the clinical and laboratory "
        "response is favourable (strong recommendation, low-quality evidence). Imaging often "
        "stays abnormal in patients who are getting better: in a prospective series of 29 "
        "cured patients it did not predict the outcome, soft-tissue collections resolving "
        "while bone changes persisted (Zarrouk 2007); at 4-8 weeks bone can look equivocal "
        "or worse while soft tissue improves, so judge the soft tissue (Kowalski 2007). "
        "Imaging misleads both ways: 12 of 36 patients who recovered looked worse a mean of "
        "2.8 months after diagnosis, and 39 of 50 who had not healed looked better "
        "(Hecquet 2021).",
        ("IDSA-2015", "ZARROUK-2007", "KOWALSKI-2007", "HECQUET-2021"),
    ),
    # The neurologic-deficit recommendations, checked 2026-12-02 against a published
    # summary of the guideline's recommendations (not part of clinical-rules.md's table).
    # MRI carries no grade here: the "(weak, low)" once given did not match the published
    # summary (a spine MRI for suspected NVO, strong, low), and the table does not grade it.
    "neuro": (
        "IDSA 2015 recommends surgical intervention for progressive neurologic deficits, "
        "progressive deformity or spinal instability despite adequate antimicrobial therapy "
        "(strong, low), and MRI as the imaging of choice.",
        ("IDSA-2015",),
    ),
    "complication": (
        "IDSA 2015 advises follow-up MRI of the epidural and paraspinal soft tissues when the "
        "clinical response is poor or treatment failure is suspected.",
        ("IDSA-2015",),
    ),
    # A mechanical flag (clinical-rules.md, "Imaging", 2026-12-06). The IDSA statement is the
    # one checked for "neuro" above; the Kowalski figures are as the rules file states them.
    "mechanical": (
        "IDSA 2015 recommends surgical intervention for progressive deformity or spinal "
        "instability despite adequate antimicrobial therapy (strong, low). Loss of vertebral "
        "height during healing is expected (Kowalski 2007: 47% → 79% at 4-8 weeks): alignment "
        "and stability on standing radiographs decide, not the MRI signal.",
        ("IDSA-2015", "KOWALSKI-2007"),
    ),
    "uncertain-dx": (
        "The advice against routine follow-up imaging (IDSA 2015) is for patients with this "
        "infection who respond to treatment; while the diagnosis is not confirmed it does not "
        "apply.",
        ("IDSA-2015",),
    ),
    # A mimic beside a confirmed infection (clinical-rules.md, "What a card should say",
    # 2026-12-06: never "diagnosis unclear" as a fact): the infection stands confirmed.
    "uncertain-dx-mimic": (
        "The advice against routine follow-up imaging (IDSA 2015) is for patients with this "
        "infection who respond to treatment; it does not cover imaging needed for another "
        "spinal condition recorded beside it, or to tell that condition from the infection.",
        ("IDSA-2015",),
    ),
    "markers-not-responding": (
        "IDSA 2015: unchanged or rising ESR/CRP after about 4 weeks of therapy raise suspicion "
        "of treatment failure (weak, low), but raised markers, persistent pain, a residual "
        "deficit or imaging findings alone do not prove failure (weak, low). Follow-up MRI is "
        "then aimed at the epidural and paraspinal soft tissues, whose change tracks CRP best, "
        "though the correlations are moderate (rho about 0.45-0.48, Ahn 2020).",
        ("IDSA-2015", "AHN-2020"),
    ),
    # A rise before day 28: the 4-week recommendation does not fit; a rise after an
    # initial fall points to a complication or another source (clinical-rules.md,
    # "What a card should say", 2026-12-06).
    "markers-rise-early": (
        "A CRP that rises again after an initial fall suggests a complication (such as an "
        "abscess) or another source of infection. IDSA 2015 advises follow-up MRI of the "
        "epidural and paraspinal soft tissues when the clinical response is poor or "
        "treatment failure is suspected.",
        ("IDSA-2015",),
    ),
    # A deficit known at diagnosis (clinical-rules.md's evidence table: "persistent pain,
    # residual deficit, elevated markers or imaging findings alone do not prove failure").
    "known-deficit": (
        "IDSA 2015: a residual neurologic deficit alone does not prove treatment failure "
        "(weak, low); a worse neurologic exam is the reason to image urgently, with MRI as "
        "the imaging of choice.",
        ("IDSA-2015",),
    ),
    "pain-worse": (
        "IDSA 2015 advises follow-up MRI when the clinical response is poor or treatment "
        "failure is suspected; persistent pain alone does not prove failure (weak, low).",
        ("IDSA-2015",),
    ),
    "insufficient-data": (
        "IDSA 2015 suggests checking ESR and CRP after about 4 weeks of therapy together with "
        "a clinical assessment (weak, low); when the response is favourable, routine "
        "follow-up MRI is not recommended (strong, low).",
        ("IDSA-2015",),
    ),
    "esr-rising": (
        "On follow-up MRI, bone change correlates with ESR and soft-tissue change with CRP, "
        "moderately (rho about 0.45-0.48, Ahn 2020): ESR follows bone, which resolves more "
        "slowly.",
        ("AHN-2020",),
    ),
}

# The first line of an advise-against card: what would change the answer.
SAFETY_NET = (
    "**Would change this advice:** a worse neurologic exam or a new deficit (image "
    "urgently); worsening pain, persisting fever or bacteraemia, or a rising CRP (image). "
    "Only coded diagnoses are seen here: confirm the neurologic exam."
)


# Beside it on an early order with no spine MRI or CT of the infection on record: the
# order may be the first, diagnostic study (a clinician reader: said last, it was missed).
# An advise-against card whose order came without an id: no suggestion can name it (an
# outside clinician's re-run: such a card advised against with no action and no reason).
NO_ORDER_ID = (
    "The order came without an id, so this card cannot offer to remove it: if you agree, "
    "cancel it in the order itself."
)


def first_imaging(unread: bool, advice: bool) -> str:
    """The caveat of an early card whose order may be the infection's first imaging: no
    spine study on record, or (``unread``) the imaging records could not be read; on an
    insufficient-data card, which gives no advice, the card does not apply (outside
    clinicians' reviews: a day-3 order, probably the diagnostic MRI)."""
    state = (
        "The spine imaging records could not be read"
        if unread
        else "No spine MRI or CT of this infection is on record"
    )
    what = "this advice" if advice else "this card"
    return (
        f"**{state}: if this is its first imaging (to confirm the diagnosis or plan a "
        f"biopsy), {what} does not apply.**"
    )


NEURO_EXAM = "Confirm the neurologic exam: only coded diagnoses are seen here."
MARKERS_CAVEAT = "Raised markers alone do not prove treatment failure (IDSA 2015)."
REBOUND_SOURCES = (
    "For a CRP rebound, also look for another source: line infection, urine, C. difficile, "
    "drug fever, venous clot."
)
COMPLICATION_ACTION = "Examine neurology now; discuss with spine surgery."
# IDSA's next steps on support cards (clinical-rules.md, "What a card should say").
MARKERS_NEXT_STEPS = (
    "Next steps: if no organism is known, a repeat biopsy; review the antibiotic, its dose "
    "and adherence; infectious diseases and spine surgery review."
)
MECHANICAL_PAIN = (
    "Worse pain while the CRP keeps falling: think mechanical (collapse, instability): "
    "upright radiographs or CT, and spine surgery review."
)
# Worse pain without that favourable CRP (a fall under 25%, a slow fall, a CRP that never
# rose): not the mechanical reading; the soft-tissue study of a poor response (IDSA 2015:
# follow-up MRI when the response is poor or failure is suspected).
PAIN_CRP_NOT_FALLING = (
    "Worse pain with a CRP that is not clearly falling: think of treatment failure or an "
    "abscess; MRI without and with gadolinium of the infected level, compared with the "
    "baseline."
)
CT_ORDERED = "MRI with gadolinium preferred to the CT ordered"
# On a support card with a CT order (not a mechanical flag alone): the fallback when MRI is
# impossible is the one each card's imaging line names (FDG-PET/CT for markers), not CT.
MRI_PREFERRED = (
    "MRI with gadolinium is preferred; a CT without contrast cannot exclude an epidural abscess."
)
MRI_PREFERRED_TO_CONTRAST_CT = "MRI with gadolinium is preferred to the CT ordered."
# A new abscess on treatment (Park 2016: an undrained paravertebral or psoas abscess
# relapses more often; at least 8 weeks of therapy). Drained on or after it, the card
# names the drainage and keeps only the review (``phrasebook.abscess_next_steps``).
ABSCESS_REVIEW = "review the organism and the antibiotic with infectious diseases."
_ABSCESS_STEPS = (
    "consider drainage (spine surgery or CT-guided); if undrained, at least 8 weeks of "
    f"antibiotics (Park 2016, for paravertebral or psoas abscesses); {ABSCESS_REVIEW}"
)
ABSCESS_NEXT_STEPS = f"A new abscess on treatment raises suspicion of failure: {_ABSCESS_STEPS}"
# an abscess with no date: new on treatment is not known (an outside clinician's re-run)
ABSCESS_NEXT_STEPS_UNDATED = (
    f"If this abscess is new on treatment, it raises suspicion of failure: {_ABSCESS_STEPS}"
)

# --- Imaging (clinical-rules.md, "Imaging", 2026-12-06): which study, protocol, extent --
# On every urgent card: the whole spine, without and with gadolinium, not delayed for
# contrast; the fallbacks when MRI is impossible (never a CT without contrast alone, and
# no nuclear imaging in an emergency).
URGENT_STUDY = (
    "Emergency MRI of the whole spine, without and with gadolinium; do not delay it for "
    "contrast. MRI impossible: CT myelography (puncture away from the infected level) or CT "
    "with IV contrast of the level; a CT without contrast cannot exclude an epidural abscess."
)
URGENT_STUDY_SHORT = (
    "emergency whole-spine MRI without and with gadolinium, not delayed for contrast."
)
ABSCESS_STUDY = (
    "Imaging: whole-spine MRI without and with gadolinium, with DWI, if not just done; "
    "compare with the baseline; a drainable paraspinal or psoas collection: CT-guided "
    "drainage."
)
MARKERS_STUDY = (
    "Imaging: MRI without and with gadolinium of the infected level, compared with the "
    "baseline; judge the epidural and paraspinal collections: worse bone alone is expected, "
    "a better-looking MRI does not exclude failure. MRI impossible or equivocal: FDG-PET/CT."
)
UNCERTAIN_STUDY = (
    "Imaging: MRI without and with gadolinium, with DWI; CT-guided biopsy if no organism is known."
)
# Advise-against: how to read a study done anyway.
READ_ANYWAY_MRI = (
    "If imaging is done anyway: compare with the baseline; bone findings lag for months; "
    "epidural and paraspinal collections should have shrunk."
)
READ_ANYWAY_CT = (
    "A follow-up CT shows bone, which lags recovery; CT is for suspected fracture, "
    "instability or surgical planning."
)
# --- end of the imaging block ----------------------------------------------------------

# The text of the lab orders a card offers, by their LOINC code (cards/actions.py).
LAB_ORDER_NAMES = {
    "1988-5": "C-reactive protein (CRP), serum or plasma",
    "4537-7": "Erythrocyte sedimentation rate (ESR), Westergren",
}

# The shortest name of each red flag, for a summary too short for the flag's own words (an
# outside review read "Red flag recorded; ..." and could not tell which).
FLAG_NAMES: dict[str, str] = {
    "neuro": "New neurologic deficit",
    "complication": "New complication",
    "mechanical": "Mechanical complication",
    "uncertain-dx": "Diagnosis uncertain",
    "markers-not-responding": "CRP not responding",
    "pain-worse": "Pain worse",
}

# After a mechanical flag's line, on a card that does not ask for an emergency MRI (beside a
# new deficit it would contradict the card: an outside clinical re-read).
MECHANICAL_MRI_ONLY_IF = "MRI only if the neurologic exam or the markers worsen."


# --- What each decision says of repeat imaging: the summaries say it of the study ordered
# ("spine MRI"), the headlines and the insufficient-data detail of "imaging" -------------


def not_recommended(study: str) -> str:
    return f"routine repeat {study} not recommended"


def reasonable(study: str) -> str:
    return f"repeat {study} reasonable"


def not_enough_data(study: str) -> str:
    return f"not enough data to judge repeat {study}"


# One line per decision, for tools that list decisions (``spine-cds try``): what the
# decision is, not why (the rules that fired follow it; a support card need not rest on a
# red flag, nor an advise-against card on a fall: a clinician's re-run).
HEADLINES: dict[str, str] = {
    "advise-against": not_recommended("imaging"),
    "support": reasonable("imaging"),
    "support-urgent": f"urgent MRI: {FLAG_NAMES['neuro'].lower()}",
    "insufficient-data": not_enough_data("imaging"),
}
# The first line of an insufficient-data card's detail, and the head of its asks.
NOT_ENOUGH_DATA = (
    f"**{upper_first(not_enough_data('imaging'))}: this card neither supports nor advises "
    "against it.**"
)
TO_DECIDE = "To decide:"

# --- The service's name where the EHR shows it (cards/context.py: a caller may name it) --
SERVICE_NAME = "Spine imaging follow-up (NVO)"
# the PAMA rating's qualified CDS mechanism (the rated order's extension)
QCDSM_NAME = f"{SERVICE_NAME} CDS service"


# --- A card's suggestions and the actions they carry, as the EHR shows them (composed in
# cards/actions.py and cards/ratings.py) --------------------------------------------------


def remove_order(named: str, draft: bool = False, count: int = 1) -> str:
    """ "Remove the spine MRI order", "Remove the draft spine MRI order", "Remove the
    cervical spine MRI and thoracic spine MRI orders"."""
    return f"Remove the {'draft ' if draft else ''}{named} order{'s' if count > 1 else ''}"


# A marker as one order names it ("Order an ESR"), by MeasurementKind value.
MARKER_NAMED = {"crp": "a CRP", "esr": "an ESR"}


def order_markers(kinds: Sequence[str]) -> str:
    """ "Order CRP and ESR", "Order a CRP", "Order an ESR" (the CRP already in the order
    set: an outside clinician's review saw "Order a CRP" create an ESR)."""
    if len(kinds) > 1:
        return "Order CRP and ESR"
    return f"Order {MARKER_NAMED[kinds[0]]}"


def markers_drafted(kinds: Sequence[str]) -> str:
    """ "A CRP is already in this order set: not ordered again." """
    named = " and ".join(MARKER_NAMED[k] for k in kinds)
    verb = "are" if len(kinds) > 1 else "is"
    return upper_first(f"{named} {verb} already in this order set: not ordered again.")


def order_study(named: str, instead: bool = False) -> str:
    """ "Order C-reactive protein (CRP), serum or plasma"; "Order emergency MRI of the whole
    spine without and with gadolinium (STAT) instead"."""
    return f"Order {named} instead" if instead else f"Order {named}"


def emergency_stat(named: str) -> str:
    return f"emergency {named} (STAT)"


def made_stat(named: str, count: int = 1) -> tuple[str, str, str]:
    """What the suggestion that makes the draft ``named`` STAT says: its label, the order
    its create action makes, and the study in its update's description. Several drafts:
    "Make the whole spine MRI orders STAT" (the three CPT parts of one study),
    "Make the thoracic spine MRI and lumbar spine MRI orders STAT"."""
    said = f"{named} STAT"
    if count > 1:
        return f"Make the {named} orders STAT", f"Order the {said}", said
    return f"Make the {said}", f"Order the {said}", said


def make_draft_stat(named: str) -> str:
    """The update of one of several drafts made STAT: "Make the draft whole spine MRI
    order STAT" (its code unchanged: not "change the draft order to ...", which would read
    as the cervical part turned into a whole-spine MRI)."""
    return f"Make the draft {named} order STAT"


def change_draft(label: str) -> str:
    return f"Change the draft order to {label}"


def rating_description(rating: str, service: str) -> str:
    return f"Appropriateness rating: {rating} ({service})"
