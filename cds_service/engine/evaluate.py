"""assess(): domain objects, settings and the evaluation time in; an Assessment out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from fhir_mappers.model import ConditionFact, ImagingOrder, PatientData, When
from fhir_mappers.patients import age_in_years

from . import sources
from .assessment import (
    RULE_NEURO,
    Assessment,
    Episode,
    NotApplicableReason,
    Recommendation,
    Remark,
    RuleFinding,
)
from .course import course_notes, course_remarks, treatment_start_unclear
from .episode import (
    applicability,
    covers_all,
    covers_some,
    diagnosis_cutoff,
    earlier_infection,
    other_episode_starts,
    treatment_start,
)
from .findings import (
    DiagnosisSpan,
    deficit_level_note,
    found_with_another_diagnosis,
    known_deficit,
    known_deficit_remark,
    known_notes,
    level_note,
    separate_diagnoses,
    with_known,
)
from .next_steps import next_steps_of
from .pain import pain_rule
from .read_gaps import cut_off_note, incomplete_reads, read_short, unusable_pain
from .readings import most_cautious
from .records import antibiotic_to_dict
from .response import (
    discordant_pair,
    discordant_remark,
    favourable_finding,
    favourable_response_gaps,
    insufficient_finding,
    pending_rise,
    unread_latest,
)
from .routine import (
    deciding_flags,
    immunosuppression,
    not_routine,
    prior_imaging,
    scope_unread,
    seen_on_every_flag,
    spine_surgery,
)
from .rules import (
    CrpTrend,
    complication_rule,
    crp_trend,
    known_findings,
    markers_rule,
    mechanical_rule,
    neuro_rule,
    new_deficits,
    resolved_findings,
    uncertain_dx_rule,
)
from .series import early_rise, figures_of, marker_notes, series, yoon_note
from .study import answering_study, crp_keeps_falling, study_gaps, whole_spine_studies
from .thresholds import RuleSettings
from .timeline import day_zone, in_zone, order_day, order_moment

__all__ = ["assess"]


def assess(
    orders: Sequence[ImagingOrder], data: PatientData, settings: RuleSettings, now: datetime
) -> Assessment:
    """Decide whether repeat spine imaging is supported for this patient at this time."""
    orders = whole_spine_studies(sorted(orders, key=lambda o: o.reference))
    moment, source = order_moment(orders, now)
    evaluated_at, eval_day = moment.instant, moment.day
    counts = {
        "conditions": len(data.conditions),
        "measurements": len(data.measurements),
        "issues": len(data.issues),
    }
    base = Assessment(
        recommendation=Recommendation.NOT_APPLICABLE,
        evaluated_at=evaluated_at,
        evaluation_day=eval_day,
        evaluation_time_source=source,
        orders=orders,
        settings=settings,
        counts=counts,
        issues=data.issues,
        unavailable=data.unavailable,
    )
    if data.birth_date is not None and data.birth_date > eval_day:
        # a birth after the order is no age at all (a placeholder such as 9999-12-31):
        # decided as for an unknown age, not as a child's, and said so in the audit
        base = replace(base, birth_after_evaluation=True)
    elif data.birth_date is not None:
        base = replace(base, age_years=age_in_years(data.birth_date, eval_day))
    chosen, reason = applicability(orders, data.conditions, settings)
    if chosen is None:
        return replace(base, not_applicable_reason=reason)
    if base.age_years is not None and base.age_years < settings.min_age_years:
        # adults only: childhood discitis differs (organisms, biopsy, sedation, growth)
        return replace(base, not_applicable_reason=NotApplicableReason.UNDER_MIN_AGE)
    episode = treatment_start(chosen, data.antibiotics, settings)
    entries = [episode] + [
        treatment_start(e, data.antibiotics, settings)
        for e in other_episode_starts(data.conditions, settings, chosen)
    ]

    def decide(reading: Episode) -> Assessment:
        spans = separate_diagnoses(reading, entries, settings)
        return _evaluate(base, moment, reading, data, settings, spans)

    first = decide(episode)
    others = [
        e for e in entries[1:] if e.t0 is None or episode.t0 is None or e.t0.day != episode.t0.day
    ]
    if not others:
        return first
    return most_cautious([first] + [decide(e) for e in others], episode, settings)


def _evaluate(
    base: Assessment,
    moment: When,
    episode: Episode,
    data: PatientData,
    settings: RuleSettings,
    spans: Sequence[DiagnosisSpan] = (),
) -> Assessment:
    """The rules for one episode start (T0), every day counted in one zone; ``spans``:
    the diagnosis windows of NVO entries that cannot share this start's treatment."""
    zone = day_zone(episode.t0, moment)
    episode, data = in_zone(episode, data, zone)
    eval_day = order_day(moment, zone)
    base = replace(base, evaluation_day=eval_day)
    counts = dict(base.counts)
    notes: list[Remark] = []
    if data.cut_off:
        notes.append(cut_off_note(data.cut_off))
    if data.failed_in_part:
        notes.append(cut_off_note(data.failed_in_part, "search-failed-in-part"))
    t0_day = episode.t0.day if episode.t0 is not None else None
    crp, esr, pain = series(data.measurements, t0_day, eval_day, settings, counts, notes)

    cutoff = diagnosis_cutoff(episode, settings)
    # found with a separate diagnosis of the infection: known, whichever start is read
    other = found_with_another_diagnosis(data.conditions, cutoff, spans)
    flagged = tuple(c for c in data.conditions if c not in other)
    known = with_known(known_findings(data.conditions, cutoff), other)
    deficits = new_deficits(flagged, cutoff)
    findings: list[RuleFinding] = []
    for rule in (
        neuro_rule(deficits, t0_day, eval_day),
        complication_rule(flagged, t0_day, cutoff, data.spine_surgery),
        mechanical_rule(flagged, t0_day, cutoff),
    ):
        if rule is not None:
            findings.append(rule)
    dx = uncertain_dx_rule(episode, data.conditions)
    if dx is not None:
        findings.append(dx)

    discordant = discordant_pair(crp, settings)
    trend = CrpTrend(None, None, None, None, None)
    # a CRP search cut short of the baseline window: judged once, for the rules and the card
    crp_short = t0_day is not None and read_short(data, sources.CRP, t0_day, settings)
    unclear = treatment_start_unclear(episode, data.antibiotics, settings)  # judged once too
    if t0_day is not None:
        trend = crp_trend(crp, t0_day, settings)
        # no plateau or rise from a discordant latest pair, a CRP search cut short of the
        # baseline window, or a treatment start not held to a day (no 14- or 28-day mark)
        no_marks = discordant is not None or unclear is not None
        markers = None if no_marks else markers_rule(trend, t0_day, settings, not crp_short)
        falls = crp_keeps_falling(
            trend, crp, t0_day, settings, markers is not None, discordant is not None
        )
        for rule in (markers, pain_rule(pain, t0_day, settings, falls, trend.latest)):
            if rule is not None:
                findings.append(rule)

    region, regions = episode.region, episode.regions
    start_day = episode.episode_start.day if episode.episode_start is not None else None
    prior = prior_imaging(
        data.prior_studies,
        findings,  # the red flags: no other finding is made yet
        data.conditions,
        regions,
        t0_day,
        start_day,
        eval_day,
        settings.data_lookback_days,
        settings.prior_study_days,
    )
    deciding = deciding_flags(findings, prior)
    if len(deciding) < len(findings):
        # a flag seen on a recent study does not decide the card: the unseen ones do
        findings = list(deciding)
        if not any(f.rule_id == RULE_NEURO for f in findings):
            deficits = []  # every new deficit was seen: its level is not in question
    stated = not_routine(base.orders, data.conditions)
    if stated is not None:
        if not findings:
            # not routine follow-up and no red flag: no card; the audit keeps the reason
            return replace(
                base,
                episode=episode,
                infection_region=region,
                known=known,
                notes=(stated,),
                not_applicable_reason=NotApplicableReason.NOT_ROUTINE,
            )
        # with a red flag the card stands, and says the flag stands on its own
        notes.append(replace(stated, data={**stated.data, "redFlag": True}))
    # an order that images one infected level is repeat imaging of the infection; one
    # that misses any is named (``level_note``) and cannot answer a red flag (study_gaps)
    covering = tuple(o.reference for o in base.orders if covers_some(o.region, regions))
    if not findings and not covering:
        # no red flag and no study of the infected level: not repeat imaging of it
        return replace(
            base,
            episode=episode,
            infection_region=region,
            known=known,
            not_applicable_reason=NotApplicableReason.ORDER_OUTSIDE_INFECTION,
        )

    figures = figures_of(trend, pain, esr, t0_day, eval_day, settings)
    if t0_day is not None:
        figures = replace(
            figures,
            crp_read_short=crp_short,
            pain_unusable=unusable_pain(data.issues, t0_day, eval_day),
        )
    marker_notes(crp, esr, trend, notes, settings, data.issues, (t0_day, eval_day))
    deficit_missed = deficit_level_note(base.orders, deficits, regions)
    if deficit_missed is not None:
        notes.append(deficit_missed)
    whole = tuple(o.reference for o in base.orders if covers_all(o.region, regions))
    missed = level_note(base.orders, whole, episode, red_flag=bool(findings))
    if missed is not None:
        notes.append(missed)

    missing: list[Remark] = []
    unmet: list[Remark] = []
    named: ConditionFact | None = None
    short_of: dict[str, str] = {}
    study = None
    # spine surgery in the episode: named on every card (an outside review), and on an
    # advise-against candidate a CT after it is not advised against
    ordered = [o for o in base.orders if o.reference in covering]
    surgery = spine_surgery(ordered, data.spine_surgery, start_day, t0_day)
    if findings:
        urgent = any(f.recommendation is Recommendation.SUPPORT_URGENT for f in findings)
        recommendation = Recommendation.SUPPORT_URGENT if urgent else Recommendation.SUPPORT
        seen = seen_on_every_flag(prior) is not None
        short_of = dict(study_gaps(base.orders, findings, urgent, regions, deficits, seen))
        study = answering_study(findings, regions, deficits)
        if surgery is not None:  # named beside the red flags too
            notes.append(replace(surgery, data={**surgery.data, "redFlag": True}))
    else:
        if t0_day is None:
            # antibiotic orders on record that no window can tie to the undated diagnosis:
            # the first named, so the card never says no treatment start is recorded
            untied = episode.outside_window
            missing.append(
                Remark("episode-start-unknown", {"antibiotic": antibiotic_to_dict(untied[0])})
                if untied
                else Remark("episode-start-unknown")
            )
        else:
            named = known_deficit(known)
            if named is not None:
                # the remark names this deficit and its date: the note need not again
                missing.append(known_deficit_remark(named, episode, settings.diagnosis_window_days))
            crp_skipped = sum(1 for i in data.issues if i.kind == "crp")
            gaps, unmet = favourable_response_gaps(
                trend,
                pain,
                t0_day,
                eval_day,
                len(crp),
                settings,
                crp_skipped,
                discordant=discordant is not None,
                pain_skipped=figures.pain_unusable,
            )
            missing += gaps
            immune = immunosuppression(data.conditions, t0_day)
            if immune is not None:
                missing.append(immune)
            missing += course_remarks(
                episode, data.conditions, data.antibiotics, base.orders, cutoff, settings, unclear
            )
            if surgery is not None:
                # a CT after spine surgery is never advised against; with an MRI the
                # card names the operation and offers the post-operative override
                (missing if surgery.data["ct"] else notes).append(surgery)
            if discordant is not None:
                missing.append(discordant_remark(discordant))
            rebound = early_rise(trend, t0_day, settings)
            if rebound is not None:
                missing.append(rebound)
                # its repeat CRP comes first: not also "repeat at about day 28" (a re-run)
                unmet = [u for u in unmet if u.code != "crp-not-falling"]
            pending = pending_rise(data.issues, trend.latest, t0_day, settings)
            if pending is not None:
                missing.append(pending)
            unread = unread_latest(data.issues, trend.latest, t0_day)
            if unread is not None:
                missing.insert(0, unread)  # first: it explains an old latest CRP too
            later = next((n for n in notes if n.code == "after-evaluation"), None)
            if later is not None:
                # results newer than the order may hold a red flag the order's date hides
                # (an order pended on day 30 and signed on day 53): no advice against
                # imaging from the older picture; the card names them (an outside review)
                notes.remove(later)
                missing.append(replace(later, data={**later.data, "blocks": True}))
            missing += incomplete_reads(data, t0_day, settings)
            missing += scope_unread(data.unavailable, ordered)
        days = figures.days_since_t0
        first = _may_be_first_imaging(prior, data.unavailable)
        early = {"day": days, "afterDays": settings.plateau_after_days, **first}
        is_early = days is not None and days < settings.plateau_after_days
        if missing or unmet:
            recommendation = Recommendation.INSUFFICIENT_DATA
            findings.append(insufficient_finding(missing, unmet))
            if is_early and first:  # the same caveat (an outside clinician's review)
                notes.append(Remark("early-order", early))
        else:
            recommendation = Recommendation.ADVISE_AGAINST
            assert t0_day is not None  # favourable response needs a T0
            findings.append(favourable_finding(trend, pain, t0_day, settings, known))
            if is_early:
                notes.append(Remark("early-order", early))
            yoon = yoon_note(trend, esr, t0_day, settings)
            if yoon is not None:
                notes.append(yoon)

    listed = [c for c in known if c is not named]
    # an earlier infection on record is looked for only when a known finding is listed
    earlier = bool(listed) and earlier_infection(data.conditions, settings, episode)
    before_days = settings.antibiotic_before_days if earlier else None
    notes.extend(known_notes(listed, episode, data.spine_surgery, before_days))
    resolved = resolved_findings(flagged, cutoff, t0_day)
    if resolved is not None:
        notes.append(resolved)
    notes += course_notes(data.conditions, cutoff, t0_day)
    notes.extend(prior)
    decided = replace(
        base,
        counts=counts,
        recommendation=recommendation,
        episode=episode,
        rules_fired=tuple(findings),
        crp=crp,
        pain=pain,
        esr=esr,
        figures=figures,
        missing=tuple(missing),
        unmet=tuple(unmet),
        notes=tuple(notes),
        known=known,
        covering=covering,
        infection_region=region,
        study_gaps=short_of,
        answering_study=study,
    )
    steps = next_steps_of(decided, data.other_drafts, data.drafted_markers)
    return replace(decided, next_steps=steps)


def _may_be_first_imaging(prior: Sequence[Remark], unavailable: frozenset[str]) -> dict[str, bool]:
    """Whether the order may be the infection's first, diagnostic study rather than a
    repeat, as the early-order note says it: no spine study of the episode on record
    (``noStudyOnRecord``; a clinician reader, on a day-2 order), or the imaging records
    not read, so none known (``studiesUnread``; an outside re-run); empty when a study is
    on record."""
    if sources.IMAGING & unavailable:
        return {"studiesUnread": True}
    if not any(r.code == "last-spine-study" for r in prior):
        return {"noStudyOnRecord": True}
    return {}
