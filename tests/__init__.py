"""The project's tests. What several test modules share lives in plain helper modules beside them.

A test module never imports another test module or a conftest: helpers, constants and
fixtures-as-functions that more than one module needs sit in modules that pytest does not
collect (`tests/system_deps.py`, `tests/sync_service/service_helpers.py`, ...). pytest rewrites
the asserts of those helpers as it does a test module's, so a failing one reports what it compared.
"""

import pytest

pytest.register_assert_rewrite(
    "tests.system_deps",
    "tests.libreoffice",
    "tests.addin.issue_functions",
    "tests.addin.reader_helpers",
    "tests.dashboard.web_helpers",
    "tests.gsheets.sheet_helpers",
    "tests.sso.sso_helpers",
    "tests.sync_service.approval_chains",
    "tests.sync_service.http_helpers",
    "tests.sync_service.service_helpers",
    "tests.sync_service.spend_helpers",
)
