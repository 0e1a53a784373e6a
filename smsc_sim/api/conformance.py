"""
The control API's conformance resources: the judge's report on the ESMEs
under test, as JSON, JUnit XML or Markdown, and its reset.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from smsc_sim.api.http import JSONAPI, APIError, Call, TextResponse, check_keys, excerpt
from smsc_sim.conformance.query import FILTERS, parse_filters

if TYPE_CHECKING:
    from smsc_sim.simulator import Simulator

#: the report formats of ``GET /conformance?format=``, with their content types
FORMATS = {
    "json": "application/json",
    "junit": "application/xml",
    "markdown": "text/markdown; charset=utf-8",
}


class ConformanceRoutes:
    """``GET /conformance`` and ``POST /conformance/reset``, on the simulator's judge."""

    def __init__(self, simulator: Simulator) -> None:
        self.simulator = simulator

    def add_routes(self, api: JSONAPI, prefix: str) -> None:
        """Register the routes on ``api``."""
        api.add(prefix + "/conformance", "GET", self.report)
        api.add(prefix + "/conformance/reset", "POST", self.reset)

    def report(self, call: Call) -> Any:
        """
        The verdict, the counts by code and the findings, filtered by
        ``account``, ``session_id``, ``severity`` and ``since``;
        ``format=junit`` answers JUnit XML, ``format=markdown`` Markdown.
        """
        query = dict(call.query)
        check_keys(query, (*FILTERS, "format"), "query")
        shape = query.pop("format", "json")
        if shape not in FORMATS:
            raise APIError(400, f"format must be one of {', '.join(FORMATS)}, got {excerpt(shape)}")
        try:
            filters = parse_filters(query)
        except ValueError as e:
            raise APIError(400, str(e)) from None
        judge = self.simulator.judge
        if shape == "junit":
            return TextResponse(judge.junit(**filters).encode("utf-8"), FORMATS[shape])
        if shape == "markdown":
            return TextResponse(judge.markdown(**filters).encode("utf-8"), FORMATS[shape])
        summary = judge.summary(**filters)
        summary["time"] = self.simulator.clock.seconds()
        summary["judging"] = self.simulator.config.conformance_judge
        return summary

    def reset(self, call: Call) -> dict[str, Any]:
        """Forget every finding (sessions and their binds stay known to the judge)."""
        check_keys(call.object_body(), ())
        self.simulator.judge.reset()
        return {"reset": True}
