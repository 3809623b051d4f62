"""What a card asks for beside its recommendation (clinical-rules.md, "What a card should
say"), judged once from the Assessment: an emergency MRI now, MRI preferred to the CT
ordered, the CRP and ESR to order (or a CRP alone), what an insufficient-data summary asks
of the markers, the drafts to make STAT and the one to change into the study that answers.
The cards word these and build their suggestions from them.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from fhir_mappers.model import (
    ORDER_NOT_COUNTED,
    ORDER_UNDATED,
    ImagingOrder,
    MeasurementKind,
    Modality,
)

from .assessment import (
    NO_ORDER,
    ORDERS_NOT_COUNTED,
    UNDATED_ORDERS,
    Assessment,
    NextSteps,
    Recommendation,
)
from .episode import covers_all
from .evidence import evidence_cited
from .routine import STATED_ORDERS, neuro_seen_on_study, seen_on_every_flag
from .study import GAP_CONTRAST, GAP_MECHANICAL_MRI, GAP_SEEN, mri_preferred_to_ct

# What an insufficient-data summary asks of the markers (``NextSteps.markers_asked``).
ORDER_CRP = "order-crp"  # no CRP counted, a recent ESR on record: a CRP alone
ORDER_CRP_ESR = "order-crp-esr"  # no CRP counted
REPEAT_CRP_ESR = "repeat-crp-esr"  # the latest CRP is too old
AWAIT_CRP = "await-crp"  # a CRP drawn after the latest counted one awaits its result

CRP_AND_ESR = (MeasurementKind.CRP, MeasurementKind.ESR)

# Priorities that already say "now" to the department (FHIR request-priority).
NOW = frozenset({"stat", "asap"})


def next_steps_of(
    a: Assessment,
    others: Sequence[ImagingOrder] = (),
    drafted: Collection[MeasurementKind] = frozenset(),
) -> NextSteps:
    """The next steps of a decided Assessment (``evaluate`` sets them on it); ``others``:
    the spine drafts of the order set not in question (order-select's unselected ones);
    ``drafted``: the markers a draft lab order of the order set already orders."""
    emergency = emergency_mri(a)
    # only when no order in question answers: else the other is a second copy, not to be
    # made STAT beside it (a re-check: a lumbar MRI selected and its unselected twin)
    answering = () if any(answers(a, o) for o in a.orders) else other_drafts_answering(a, others)
    # on an urgent card an unselected draft that answers is made STAT too (an outside
    # clinician's review: a routine lumbar MRI beside a new cauda equina syndrome went
    # unmentioned, the selected cervical MRI offered no change)
    stat = (*stat_orders(a), *(o for o in answering if o.priority not in NOW)) if emergency else ()
    study = a.answering_study
    unrated = unrated_orders(a, emergency)
    wanted = study_wanted(a, unrated) and not answering
    replaced = replaced_order(a) if wanted else None
    asked = marker_orders(a)
    return NextSteps(
        emergency_mri=emergency,
        mri_preferred_to_ct=mri_preferred_to_ct(a.orders, a.red_flags),
        marker_orders=tuple(k for k in asked if k not in drafted),
        markers_drafted=tuple(k for k in asked if k in drafted),
        markers_asked=markers_asked(a),
        stat_orders=tuple(o.reference for o in stat),
        # one draft only: several made STAT are kept as ordered (extending one of them
        # would order again what the others image)
        stat_extended=len(stat) == 1 and study is not None and study.region != stat[0].region,
        replaced_order=replaced.reference if replaced is not None else None,
        study_added=wanted and replaced is None and study_added(a),
        other_answering=answering,
        unrated_orders=unrated,
        evidence=evidence_cited(a),
        antibiotics_not_counted=antibiotics_not_counted(a),
        removal_recommended=not any(n.code in REMOVAL_ONLY_OFFERED for n in a.notes),
    )


# Beside these notes an advise-against card offers the order's removal but does not
# recommend it: the markers at the Yoon levels (clinical-rules.md, "Imaging"), and new
# diagnoses the service cannot read, any of which may be a new deficit (docs/
# clinical-logic.md, "New diagnoses the service does not read").
REMOVAL_ONLY_OFFERED = frozenset({"yoon-high-markers", "new-diagnoses-not-read"})


def antibiotics_not_counted(a: Assessment) -> str:
    """None on record, or the ones on record do not count (named among the data left out,
    e.g. "Cefazolin order without a start date: not counted as treatment."): a card never
    says "no antibiotic order found" while one is on record (an outside review)."""
    left_out = [i.code for i in a.issues if i.code in (ORDER_UNDATED, ORDER_NOT_COUNTED)]
    if not left_out:
        return NO_ORDER
    if all(code == ORDER_UNDATED for code in left_out):
        return UNDATED_ORDERS
    return ORDERS_NOT_COUNTED


def emergency_mri(a: Assessment) -> bool:
    """The card asks for an emergency MRI now: urgent, with no red flag of it seen on a
    study of the last days (then a new MRI only if the exam changed)."""
    return (
        a.recommendation is Recommendation.SUPPORT_URGENT
        and seen_on_every_flag(a.notes) is None
        and neuro_seen_on_study(a.notes) is None
    )


def unrated_orders(a: Assessment, emergency: bool) -> frozenset[str]:
    """The drafts a support or urgent card gives no rating (engine/study.py): an MRI
    for a mechanical question alone (not wrong, only not the study that answers), one that
    would repeat a study of the last days on which every red flag was seen (a new one only
    if the exam changed), and, beside an emergency MRI now, an MRI of the right level
    without gadolinium: it still shows cord compression, so neither "appropriate" (it
    cannot show all) nor a red "not appropriate" on the scan the card asks for (an
    outside neuroradiology reading). And a CT with contrast where the card says MRI with
    gadolinium is preferred to it: it can show an abscess, so not "not appropriate", but
    "appropriate" beside "MRI preferred" had a radiologist do the CT (an outside review,
    2026-12-07). And a draft ordered for another reason (``stated_orders``)."""
    ct_second = mri_preferred_to_ct(a.orders, a.red_flags)
    out = set(stated_orders(a))
    for o in a.orders:
        gap = a.study_gaps.get(o.reference)
        if (
            gap in (GAP_MECHANICAL_MRI, GAP_SEEN)
            or (gap == GAP_CONTRAST and o.modality is Modality.MRI and emergency)
            or (gap is None and ct_second and o.modality is Modality.CT)
        ):
            out.add(o.reference)
    return frozenset(out)


def marker_orders(a: Assessment) -> tuple[MeasurementKind, ...]:
    """The lab orders a card offers: on an advise-against card what it asks to repeat in
    its own words; on an insufficient-data card CRP and ESR when a CRP must be measured
    (``_needs_markers``), a CRP when it rose again too early to count. Only a CRP when no
    CRP is counted and an ESR as recent as a CRP must be is on record: never "CRP/ESR"
    then. Never a CRP while one drawn after the latest counted awaits its result
    (``crp-awaited``): the card names it instead. Orders already in the order set are
    left out by ``next_steps_of``."""
    if a.recommendation is Recommendation.ADVISE_AGAINST:
        wanted = _repeat_asked(a)
    elif _needs_markers(a):
        wanted = CRP_AND_ESR
    elif a.recommendation is Recommendation.INSUFFICIENT_DATA and (
        a.figures.crp_rise_too_early or any(r.code == "crp-unread-latest" for r in a.missing)
    ):
        # up again too early to count, or a newer CRP unreadable: the card asks for a repeat
        wanted = CRP_AND_ESR[:1]
    else:
        wanted = ()
    if wanted == CRP_AND_ESR and a.figures.crp_latest is None and a.figures.esr_recent:
        wanted = CRP_AND_ESR[:1]
    if crp_awaited(a):
        return tuple(k for k in wanted if k is not MeasurementKind.CRP)
    return wanted


def crp_awaited(a: Assessment) -> bool:
    """A CRP drawn after the latest counted one awaits its result (engine/response.py)."""
    return any(n.code == "crp-awaited" for n in a.notes)


def _repeat_asked(a: Assessment) -> tuple[MeasurementKind, ...]:
    """What an advise-against card asks to repeat in its own words: CRP and ESR beside the
    Yoon levels or a rising ESR."""
    if any(n.code in ("yoon-high-markers", "esr-rising") for n in a.notes):
        return CRP_AND_ESR
    return ()


def _needs_markers(a: Assessment) -> bool:
    """Ask for CRP/ESR only when the latest CRP is missing or too old, or when the latest
    two disagree (the card asks for a repeat)."""
    if a.recommendation is not Recommendation.INSUFFICIENT_DATA:
        return False
    if any(r.code == "episode-start-unknown" for r in a.missing):
        return False  # what is missing is a date for the infection, not a CRP
    if any(
        r.code == "crp-not-falling" and r.data["latest"].get("comparator") in ("<", "<=")
        for r in a.unmet
    ):
        return True  # a latest CRP reported only as "<=10": a measured value decides
    return not a.figures.crp_recent or any(r.code == "crp-discordant" for r in a.missing)


def markers_asked(a: Assessment) -> str | None:
    """What an insufficient-data summary asks of the markers: only when the latest CRP is
    missing or old (a discordant pair says "repeat CRP" itself); nothing with no
    treatment start (no CRP can count, and what is missing is the diagnosis date)."""
    f = a.figures
    if a.recommendation is not Recommendation.INSUFFICIENT_DATA or f.crp_recent:
        return None
    if f.t0_day is None:  # no treatment start: no CRP can count
        return None
    if any(r.code == "crp-unread-latest" for r in a.missing):
        return None  # a newer CRP is on record, unreadable: its remark asks for it
    if crp_awaited(a):
        return AWAIT_CRP  # that CRP is the repeat
    if f.crp_latest is None:
        return ORDER_CRP if f.esr_recent else ORDER_CRP_ESR
    return REPEAT_CRP_ESR


def answers(a: Assessment, o: ImagingOrder, unrated: frozenset[str] = frozenset()) -> bool:
    """The draft is a study that answers the card's question and covers the episode: it
    images the infected level (``covering``), nothing it lacks (``study_gaps``), and the
    card does not leave it unrated (``unrated_orders``: e.g. a CT with contrast where MRI
    is preferred, which the card would still have replaced)."""
    return (
        o.reference in a.covering and o.reference not in a.study_gaps and o.reference not in unrated
    )


def stat_orders(a: Assessment) -> tuple[ImagingOrder, ...]:
    """Every draft that answers the question but is ordered routine (or only "urgent"):
    on a card that asks for an emergency MRI now (only then is it asked), the card makes
    them STAT (an outside clinician's reading: a routine slot for a new cauda equina
    syndrome is a wrongly placed order). Every one, not the first: 72156 + 72157 +
    72158 signed together are one whole-spine study (clinical-rules.md, "Imaging"), and
    making only its cervical part STAT left the level of a cauda equina syndrome
    routine (an outside clinician's review)."""
    return tuple(
        o for o in a.orders if o.valid and o.identified and o.priority not in NOW and answers(a, o)
    )


def study_wanted(a: Assessment, unrated: frozenset[str]) -> bool:
    """The card asks for a study no draft of the call is, so it may change a draft into it
    (``replaced_order``) or order it beside them (``study_added``): there is a study that
    answers its question (none for a mechanical question), not every red flag was seen
    on a study of the last days (a new MRI only if the exam changed, which the card
    says), and no draft already answers (``answers``; ``unrated``: the drafts the card
    leaves unrated): the change would order that study twice (an outside clinician's
    review: a cervical MRI changed into a second lumbar MRI with gadolinium beside the
    one ordered). On an urgent card the draft that answers is made STAT
    (``stat_orders``)."""
    return (
        a.answering_study is not None
        and seen_on_every_flag(a.notes) is None
        and not any(answers(a, o, unrated) for o in a.orders)
    )


def replaced_order(a: Assessment) -> ImagingOrder | None:
    """Where the card wants a study (``study_wanted``), the first draft that cannot
    answer its question (``study_gaps``), which the card offers to change into the study
    that can: not an MRI for a mechanical question alone (not wrong, only not that
    study), nor a draft ordered for another reason (``stated_orders``). The card still
    rates the draft that misses the level and names it as outside the infection."""
    stated = stated_orders(a)
    return next(
        (
            o
            for o in a.orders
            if o.valid
            and o.identified
            and o.reference not in stated
            and a.study_gaps.get(o.reference, GAP_MECHANICAL_MRI) != GAP_MECHANICAL_MRI
        ),
        None,
    )


def study_added(a: Assessment) -> bool:
    """Where the card wants a study (``study_wanted``) and changes no draft into it, it
    orders the study beside the drafts when they are ordered for another reason, so none
    is changed into it (``stated_orders``), and none is of its modality. The clinician's
    re-run of that change: a lumbar CT ordered for a fall beside a new cauda equina
    syndrome left the card with no one-click emergency MRI at all."""
    study = a.answering_study
    if study is None:
        return False
    stated = stated_orders(a)
    valid = [o for o in a.orders if o.valid]
    # not beside a draft of the same modality (an urgent MRI for a fall): a second MRI
    # would image again what that one images, the card says what it lacks
    return bool(stated) and all(
        o.reference in stated and o.modality is not study.modality for o in valid
    )


def other_drafts_answering(
    a: Assessment, others: Sequence[ImagingOrder]
) -> tuple[ImagingOrder, ...]:
    """The spine drafts of the order set not in question that are the study the card asks
    for: of its modality, imaging every infected level, and not without contrast. The
    card then changes nothing into that study, nor orders it: it would be ordered twice
    (an outside clinician's review: a CT selected beside an unselected lumbar MRI was
    offered as "Order MRI of the lumbar spine ... instead"); it names them instead."""
    study = a.answering_study
    if study is None or a.episode is None:
        return ()
    regions = a.episode.regions
    return tuple(
        o
        for o in others
        if o.valid
        and o.identified
        and o.modality is study.modality
        and o.contrast != "without"
        and covers_all(o.region, regions)
    )


def stated_orders(a: Assessment) -> frozenset[str]:
    """The drafts ordered for a reason the service does not read as the infection (a
    fall): beside a red flag the card says the flag stands on its own, but changing such
    a draft into the MRI the flag needs would cancel the study its own reason asked for,
    and rating it "not appropriate" judges a question the service cannot read (an outside
    clinician's review: a CT for a fall beside a new psoas abscess was rated so and
    offered as "Order MRI of the whole spine instead"). Left unrated and unchanged; the
    card still names the study that answers the flag."""
    return frozenset(
        ref for n in a.notes if n.code == "not-routine" for ref in n.data.get(STATED_ORDERS, ())
    )
