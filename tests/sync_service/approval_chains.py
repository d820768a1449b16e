"""An organisation file's approval chains for the tests, and a plan change under and one over its threshold.

EMEA plans pass the region's marketing lead and then finance, NA plans pass finance alone, and
a plan changing the approved one by more than 50,000 (or a transfer of more than 100,000) also
needs a controller.
"""

from __future__ import annotations

from tests.sync_service.service_helpers import line

CHAINS = """
[approvals]
steps = ["region_lead", "finance"]

[approvals.regions]
NA = ["finance"]

[[approvals.thresholds]]
step = "controller"
plan_change_over = "50000"

[[approvals.thresholds]]
step = "controller"
transfer_over = "100000"

[approvals.labels]
region_lead = "Region marketing lead"
controller = "Controller"
"""
SMALL = [line("EMEA-0001", m01="1000", m02="2000")]  # 3,000: under the controller's threshold
LARGE = [line("EMEA-0001", m01="30000", m02="30000")]  # 60,000: over it
