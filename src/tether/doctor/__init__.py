"""``tether doctor``: a preflight that says, before the stream, whether the path to a
worker will work and what to fix (see docs/DOCTOR.md)."""

from tether.doctor.report import Check, Report, Status
from tether.doctor.runner import STAGES, Doctor, DoctorOptions, Progress, run_doctor

__all__ = [
    "STAGES", "Check", "Doctor", "DoctorOptions", "Progress", "Report", "Status", "run_doctor",
]  # fmt: skip
