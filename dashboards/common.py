"""Small helpers shared by the boards: datasource, variables, selectors and panel shorthands.

Built with grafana-foundation-sdk builders so the output has the SDK's (Grafana's) types.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus, stat, statetimeline, table, timeseries
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import prometheus as pm

DATASOURCE = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")
#: Every query of a board filters with this: the labels the scrape adds (metrics contract).
SEL = 'namespace=~"$namespace", agentdeployment=~"$agentdeployment"'
BY = "namespace, agentdeployment"

#: Gauge the operator exports per AgentDeployment: 0 None, 1 NonCritical, 2 All (status.freeze.level).
FREEZE_METRIC = "shepherd_agentdeployment_freeze_level"
FREEZE_MAPPINGS = [
    dm.ValueMap(
        options={
            "0": dm.ValueMappingResult(text="None", color="green", index=0),
            "1": dm.ValueMappingResult(text="NonCritical", color="orange", index=1),
            "2": dm.ValueMappingResult(text="All", color="red", index=2),
        }
    )
]
CIRCUIT_MAPPINGS = [
    dm.ValueMap(
        options={
            "0": dm.ValueMappingResult(text="closed", color="green", index=0),
            "1": dm.ValueMappingResult(text="half-open", color="orange", index=1),
            "2": dm.ValueMappingResult(text="open", color="red", index=2),
        }
    )
]


def datasource_variable() -> db.DatasourceVariable:
    return db.DatasourceVariable("datasource").label("Data source").type("prometheus")


def label_variable(name: str, label: str, query: str, *, multi: bool) -> db.QueryVariable:
    variable = (
        db.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query({"query": query, "refId": f"{name}-variable"})
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
        .multi(multi)
        .include_all(multi)
    )
    if multi:
        variable = variable.all_value(".+")
    return variable


def scope_variables(*, multi: bool) -> list[db.QueryVariable]:
    """namespace and agentdeployment, from the objectives the operator exports for every resource."""
    return [
        label_variable(
            "namespace", "Namespace", "label_values(shepherd_slo_objective, namespace)", multi=multi
        ),
        label_variable(
            "agentdeployment",
            "AgentDeployment",
            'label_values(shepherd_slo_objective{namespace=~"$namespace"}, agentdeployment)',
            multi=multi,
        ),
    ]


def query(
    expr: str, legend: str = "__auto", *, ref: str = "A", instant: bool = False
) -> prometheus.Dataquery:
    target = prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref).datasource(DATASOURCE)
    if instant:
        target = target.instant().format(pm.PromQueryFormat.TABLE)
    return target


def thresholds(*steps: tuple[float | None, str]) -> db.ThresholdsConfig:
    return (
        db.ThresholdsConfig()
        .mode(dm.ThresholdsMode.ABSOLUTE)
        .steps([dm.Threshold(value=value, color=color) for value, color in steps])
    )


def graph(
    title: str, description: str, *targets: prometheus.Dataquery, unit: str = "short"
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .line_width(1)
        .fill_opacity(10)
        .legend(
            cb.VizLegendOptions()
            .show_legend(True)
            .display_mode(cm.LegendDisplayMode.LIST)
            .placement(cm.LegendPlacement.BOTTOM)
        )
        .tooltip(cb.VizTooltipOptions().mode(cm.TooltipDisplayMode.MULTI).sort(cm.SortOrder.DESCENDING))
    )
    for index, target in enumerate(targets):
        panel = panel.with_target(target.ref_id(chr(ord("A") + index)))
    return panel


def with_threshold_lines(panel: timeseries.Panel, steps: db.ThresholdsConfig) -> timeseries.Panel:
    style = cb.GraphThresholdsStyleConfig().mode(cm.GraphTresholdsStyleMode.DASHED)
    return panel.thresholds(steps).thresholds_style(style)


def single(title: str, description: str, expr: str, *, unit: str = "short") -> stat.Panel:
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .with_target(query(expr, "__auto"))
        .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .color_mode(cm.BigValueColorMode.VALUE)
        .graph_mode(cm.BigValueGraphMode.NONE)
    )


def timeline(title: str, description: str, expr: str, legend: str, mappings: list) -> statetimeline.Panel:
    return (
        statetimeline.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .with_target(query(expr, legend))
        .mappings(mappings)
        .color_scheme(db.FieldColor().mode(dm.FieldColorModeId.THRESHOLDS))
        .thresholds(thresholds((None, "green"), (1, "orange"), (2, "red")))
        .show_value(cm.VisibilityMode.NEVER)
        .merge_values(True)
        .fill_opacity(70)
        .line_width(0)
    )


def table_of(
    title: str,
    description: str,
    columns: list[tuple[str, str, str]],
    extra: dict[str, list[dm.DynamicConfigValue]] | None = None,
) -> table.Panel:
    """One row per (namespace, agentdeployment); columns: (header, instant expr, unit); ``extra``:
    more field properties per header (value mappings, cell colours)."""
    panel = table.Panel().title(title).description(description).datasource(DATASOURCE)
    rename: dict[str, str] = {}
    for index, (header, expr, unit) in enumerate(columns):
        ref = chr(ord("A") + index)
        panel = panel.with_target(query(expr, header, ref=ref, instant=True))
        rename[f"Value #{ref}"] = header
        properties = [dm.DynamicConfigValue(id_val="unit", value=unit), *(extra or {}).get(header, [])]
        panel = panel.override_by_name(header, properties)
    organize = {"excludeByName": {"Time": True}, "renameByName": rename, "indexByName": {}}
    return (
        panel.with_transformation(dm.DataTransformerConfig(id_val="merge", options={}))
        .with_transformation(dm.DataTransformerConfig(id_val="organize", options=organize))
        .show_header(True)
    )
