"""The usual shape of a Condition and of a draft ServiceRequest, typed strictly enough
that whatever it accepts the fhir.resources R4B model accepts too.

The mappers validate each selected Condition and each spine imaging order with the full
R4B model (``Condition.model_validate``), about 15 us each in fhir_core's Python
validators: more than the rest of their reading. Most resources have one plain shape
(the elements below, nothing else), and a typed conversion (msgspec, compiled) can judge
that shape in a fraction of the time. So a resource is first converted to these Structs;
only one they decline is validated by the model, exactly as before. The model's verdict
is the one that counts: this is a shortcut for the resources it would pass, never a
second opinion.

Why an accepted resource is valid for the model, element by element (tests hold it:
tests/fhir_mappers/test_usual_r4.py compares the two on generated resources):

- no element outside the lists below (``forbid_unknown_fields``), no null, no wrong JSON
  type (msgspec is strict), every element the model requires present;
- a string (FHIR ``string``) holds at least one printable ASCII character, space, tab
  or line break: the model's pattern ``[ \\r\\n\\t\\S]+`` finds one;
- a ``code`` is printable ASCII words with single spaces, an ``id`` and a ``uri`` are
  printable ASCII without spaces (an id 1 to 64 characters): subsets of the model's
  patterns, in ASCII, where its regular-expression engine and Python's agree;
- a ``dateTime`` is a valid calendar date, or one with a time to the second (no leap
  second), at most six decimals and an offset within +-14:00; an ``instant`` the latter.
  Each is checked by its pattern and by the standard library's parser.

Pure: no I/O.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Final, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

# FHIR string: one character the model's "[ \r\n\t\S]+" (searched) certainly matches.
String = Annotated[str, Meta(pattern=r"[ \t\r\n!-~]")]
Code = Annotated[str, Meta(pattern=r"^[!-~]+(?: [!-~]+)*\Z")]
Id = Annotated[str, Meta(pattern=r"^[A-Za-z0-9\-.]{1,64}\Z")]
Uri = Annotated[str, Meta(pattern=r"^[!-~]+\Z")]

_TIME = (
    r"T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{1,6})?(?:Z|[+-](?:(?:0\d|1[0-3]):[0-5]\d|14:00))"
)
_DAY = r"[1-9]\d{3}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
DateTime = Annotated[str, Meta(pattern=rf"^{_DAY}(?:{_TIME})?\Z")]
Instant = Annotated[str, Meta(pattern=rf"^{_DAY}{_TIME}\Z")]


class UsualCoding(Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    system: Uri | UnsetType = UNSET
    code: Code | UnsetType = UNSET
    display: String | UnsetType = UNSET
    userSelected: bool | UnsetType = UNSET


class UsualConcept(Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    coding: list[UsualCoding] | UnsetType = UNSET
    text: String | UnsetType = UNSET


class UsualReference(Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    reference: String | UnsetType = UNSET
    display: String | UnsetType = UNSET


class UsualMeta(Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    versionId: Id | UnsetType = UNSET
    lastUpdated: Instant | UnsetType = UNSET


class UsualCondition(Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    resourceType: Literal["Condition"]
    subject: UsualReference  # required by the model
    id: Id | UnsetType = UNSET
    meta: UsualMeta | UnsetType = UNSET
    clinicalStatus: UsualConcept | UnsetType = UNSET
    verificationStatus: UsualConcept | UnsetType = UNSET
    category: list[UsualConcept] | UnsetType = UNSET
    code: UsualConcept | UnsetType = UNSET
    encounter: UsualReference | UnsetType = UNSET
    onsetDateTime: DateTime | UnsetType = UNSET
    abatementDateTime: DateTime | UnsetType = UNSET
    recordedDate: DateTime | UnsetType = UNSET


class UsualServiceRequest(Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    resourceType: Literal["ServiceRequest"]
    status: Code  # required by the model, as are intent and subject
    intent: Code
    subject: UsualReference
    id: Id | UnsetType = UNSET
    meta: UsualMeta | UnsetType = UNSET
    priority: Code | UnsetType = UNSET
    category: list[UsualConcept] | UnsetType = UNSET
    code: UsualConcept | UnsetType = UNSET
    encounter: UsualReference | UnsetType = UNSET
    authoredOn: DateTime | UnsetType = UNSET
    requester: UsualReference | UnsetType = UNSET
    reasonCode: list[UsualConcept] | UnsetType = UNSET
    reasonReference: list[UsualReference] | UnsetType = UNSET


_USUAL: Final = {"Condition": UsualCondition, "ServiceRequest": UsualServiceRequest}


def usual_r4(resource: Any) -> bool:
    """True when ``resource`` (a Condition or a ServiceRequest, as JSON) has the usual
    shape, which the R4B model accepts; False for anything else, which the caller then
    validates with the model."""
    kind = resource.get("resourceType") if type(resource) is dict else None
    struct = _USUAL.get(kind) if type(kind) is str else None
    if struct is None:
        return False
    try:
        typed = msgspec.convert(resource, struct)
    except msgspec.ValidationError:
        return False
    return _dates_exist(typed)


def _dates_exist(typed: UsualCondition | UsualServiceRequest) -> bool:
    """Every date the patterns let through is one of the calendar (no 30 February)."""
    meta = typed.meta
    texts = [meta.lastUpdated if meta is not UNSET else UNSET]
    if type(typed) is UsualCondition:
        texts += [typed.onsetDateTime, typed.abatementDateTime, typed.recordedDate]
    elif type(typed) is UsualServiceRequest:
        texts.append(typed.authoredOn)
    for text in texts:
        if text is UNSET:
            continue
        try:
            if len(text) == 10:
                date.fromisoformat(text)
            else:
                datetime.fromisoformat(text)
        except ValueError:
            return False
    return True
