"""Which screens each role sees. app.py builds st.navigation from this list.

Add one PageSpec per screen; `roles=None` means everyone logged in.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PageSpec:
    path: str  # file under pages/
    title: str
    icon: str
    section: str  # navigation group
    roles: frozenset[str] | None = None  # None: every role
    url_path: str | None = None
    default: bool = False


ALL = None
SECTIONS = ["Workspace", "Use cases", "Data", "Experiments", "Deployment", "Monitoring", "Admin", "Account"]

PAGES: list[PageSpec] = [
    PageSpec("pages/home.py", "Overview", ":material/dashboard:", "Workspace", default=True, url_path="home"),
    PageSpec("pages/activity.py", "Activity", ":material/history:", "Workspace", url_path="activity"),
    PageSpec("pages/inbox.py", "My inbox", ":material/inbox:", "Workspace", url_path="inbox"),
    PageSpec("pages/portfolio.py", "Portfolio", ":material/view_kanban:", "Use cases", url_path="portfolio"),
    PageSpec("pages/use_case.py", "Use case", ":material/lightbulb:", "Use cases", url_path="use-case"),
    PageSpec("pages/datasets.py", "Datasets", ":material/database:", "Data", url_path="datasets"),
    PageSpec("pages/dataset.py", "Dataset", ":material/table:", "Data", url_path="dataset"),
    PageSpec("pages/experiments.py", "Experiments", ":material/science:", "Experiments", url_path="experiments"),
    PageSpec("pages/run.py", "Run", ":material/play_circle:", "Experiments", url_path="run"),
    PageSpec("pages/compare.py", "Compare runs", ":material/compare:", "Experiments", url_path="compare"),
    PageSpec("pages/models.py", "Models", ":material/inventory_2:", "Experiments", url_path="models"),
    PageSpec("pages/deployments.py", "Deployments", ":material/rocket_launch:", "Deployment", url_path="deployments"),
    PageSpec("pages/deployment.py", "Deployment", ":material/rocket:", "Deployment", url_path="deployment"),
    PageSpec(
        "pages/monitoring.py", "Monitoring overview", ":material/monitor_heart:", "Monitoring", url_path="monitoring"
    ),
    PageSpec(
        "pages/deployment_monitoring.py",
        "Deployment monitoring",
        ":material/query_stats:",
        "Monitoring",
        url_path="deployment-monitoring",
    ),
    PageSpec("pages/alerts.py", "Alerts", ":material/notifications:", "Monitoring", url_path="alerts"),
    PageSpec("pages/infrastructure.py", "Infrastructure", ":material/dns:", "Monitoring", url_path="infrastructure"),
    PageSpec(
        "pages/admin_users.py", "Users & roles", ":material/group:", "Admin", frozenset({"admin"}), url_path="users"
    ),
    PageSpec("pages/account.py", "My account", ":material/person:", "Account", url_path="account"),
]


def pages_for(role: str) -> list[PageSpec]:
    return [p for p in PAGES if p.roles is None or role in p.roles or role == "admin"]
