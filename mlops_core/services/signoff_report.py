"""The use case report attached to a sign-off request (issue 18): "the signed document is the one that was read".

`attach` builds the report of the use case the object belongs to, stores its exact bytes as an artifact
(content-addressed: `signoff-reports/<sha256>.html`) and returns the evidence entry
`{"use_case_id", "sha256", "artifact", "generated_at"}`; collab.request_signoff puts it under the evidence's
"report" key, so the sign-off's evidence hash covers the report's hash. `report_bytes` gives back exactly
those bytes to the approver, and refuses bytes whose hash no longer matches.
"""

from __future__ import annotations

import hashlib
from typing import Any

from .. import artifacts
from ..db import Database, utcnow
from ..errors import DomainError, ValidationError
from ..models.collab import SignoffPublic

EVIDENCE_KEY = "report"


def use_case_of(db: Database, entity_type: str, entity_id: Any) -> int | None:
    """The use case an object belongs to (use case, dataset, run, model version, deployment, alert)."""
    from .delivery import _context

    with db.read() as s:
        uc, _dep = _context(s, str(entity_type), str(entity_id))
    return uc


def attach(db: Database, *, entity_type: str, entity_id: Any) -> dict[str, Any]:
    """Build and store the report of the object's use case; the evidence entry pointing at it."""
    from . import report

    uc = use_case_of(db, entity_type, entity_id)
    if uc is None:
        raise ValidationError(
            f"no use case report to attach: this {str(entity_type).replace('_', ' ')} belongs to no use case"
        )
    data = report.build_report(db, use_case=uc).html.encode("utf-8")
    sha = hashlib.sha256(data).hexdigest()
    key = f"signoff-reports/{sha}.html"
    if not artifacts.exists(key):
        artifacts.put_bytes(key, data)
    return {"use_case_id": uc, "sha256": sha, "artifact": key, "generated_at": utcnow().isoformat()}


def attached(signoff: SignoffPublic) -> dict[str, Any] | None:
    """The report entry of a sign-off's evidence, if a report was attached."""
    entry = (signoff.evidence or {}).get(EVIDENCE_KEY)
    return entry if isinstance(entry, dict) and entry.get("artifact") and entry.get("sha256") else None


def report_bytes(signoff: SignoffPublic) -> bytes:
    """Exactly the report the sign-off was asked on; refuses a stored file whose hash differs."""
    entry = attached(signoff)
    if entry is None:
        raise ValidationError(f"sign-off {signoff.id} has no report attached")
    try:
        data = artifacts.get_bytes(str(entry["artifact"]))
    except (OSError, DomainError) as exc:
        raise DomainError(f"the attached report cannot be read ({exc})") from None
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise DomainError("the stored report no longer matches the hash the sign-off was asked on")
    return data
