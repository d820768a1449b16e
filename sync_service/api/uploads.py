"""The one reader of an uploaded file: a multipart field `file`, or the raw CSV/xlsx body of the request."""

from __future__ import annotations

from flask import request

from sheet_templates.text import uploaded_name
from sync_service.platform.errors import ServiceError


def uploaded(named: str | None, what: str, empty: str | None = None) -> tuple[bytes, str | None]:
    """(bytes, file name) of the upload: the multipart field `file`, else the raw body named by `named`.

    `what` names the file in the refusal when the multipart field is missing ("the export"); `empty`
    is the refusal of an empty file (None: an empty file is the caller's to judge).
    """
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file")
        if upload is None:
            raise ServiceError(f"upload {what} in the multipart field 'file'")
        raw, filename = upload.read(), uploaded_name(upload.filename)
    else:
        raw, filename = request.get_data(), named
    if empty is not None and not raw:
        raise ServiceError(empty)
    return raw, filename
