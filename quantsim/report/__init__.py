"""Comparison reports: a paper-style table and figures rendered from a study's results.

    from quantsim.report import load_report_data, write_report
    data = load_report_data("studies/smoke.toml")        # or a store: "smoke.results.sqlite"
    report = write_report(data, "reports/smoke", command="quantsim report ...")

:class:`ReportData` can also be built by hand from pandas frames (see
:mod:`quantsim.report.data` for the columns). See docs/reports.md.
"""

from quantsim.report.data import (
    ReportData,
    ReportError,
    load_report_data,
    read_findings,
    read_reference,
)
from quantsim.report.render import Report, write_report

__all__ = ["Report", "ReportData", "ReportError", "load_report_data", "read_findings",
           "read_reference", "write_report"]
