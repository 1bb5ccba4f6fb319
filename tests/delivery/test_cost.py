"""The cost and capacity summary: a pinned, dated, sourced price table; figures computed from it as the summary
says (idle: control plane, system nodes, NAT, always-on pools; the GPU pools at maxNodes, spot and on-demand apart;
the GPUs promised to each team); `make plan-diff` shows how a change moves them, in a fresh clone."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import yaml

from components.config.loading import load_platform_config
from components.gpu_pools import resolve_gpu_pools
from conftest import STACKS, raw_config, stack_document
from tools.cost import HOURS_PER_MONTH, PRICES, load_prices, stack_cost

PROJECT = Path(__file__).resolve().parents[2]


def rows() -> list[dict[str, str]]:
    with PRICES.open() as stream:
        return list(csv.DictReader((line for line in stream if not line.startswith("#")), delimiter="\t"))


def test_every_price_names_its_source_and_date() -> None:
    table = rows()
    assert table
    for row in table:
        assert row["source"].startswith("https://") and row["source_date"], row
        assert row["on_demand_usd_per_hour"] or row["spot_usd_per_hour"], row
        for column in ("on_demand_usd_per_hour", "spot_usd_per_hour"):
            assert not row[column] or Decimal(row[column]) > 0
    keys = [(r["cloud"], r["region"], r["item"]) for r in table]
    assert len(keys) == len(set(keys))


def test_every_stack_is_priced_in_full() -> None:
    """Every instance and machine type the stacks run has its on-demand price: a figure never silently drops one."""
    for stack in STACKS:
        config = load_platform_config(raw_config(stack_document(stack)["config"]))
        cost = stack_cost(config, resolve_gpu_pools(config))
        assert cost.missing == [], (stack, cost.missing)


def price(item: str, region: str = "us-east-1", column: str = "on_demand_usd_per_hour") -> Decimal:
    [row] = [r for r in rows() if r["item"] == item and r["region"] in (region, "all")]
    return Decimal(row[column])


def test_dev_figures_from_the_table() -> None:
    config = load_platform_config(raw_config(stack_document("dev")["config"]))
    cost = stack_cost(config, resolve_gpu_pools(config))
    # EKS control plane, 2 on-demand m7i.xlarge system nodes, one NAT gateway; no always-on GPU pool
    idle = price("eks-control-plane") + 2 * price("m7i.xlarge") + price("nat-gateway")
    assert cost.idle_hourly == idle
    # notebooks: up to 4 g5.2xlarge per capacity type; train-a100: up to 2 p4d.24xlarge per capacity type. No typical
    # AWS spot price in the table: spot is bounded by on-demand.
    at_max = 4 * price("g5.2xlarge") + 2 * price("p4d.24xlarge")
    assert cost.max_on_demand_hourly == at_max and cost.max_spot_hourly == at_max
    assert cost.spot_at_on_demand == ["notebooks (g5.2xlarge)", "train-a100 (p4d.24xlarge)"]
    # Karpenter may also launch the shape's other types: named when the table cannot price them
    assert cost.unpriced_alternatives == ["notebooks: g5.4xlarge, g5.xlarge"]
    assert cost.promised == {"research": {"a100-40gb": (16, 16), "a10g": (8, 8)}, "applied": {"a10g": (8, 8)}}


def test_prod_counts_the_always_on_reserved_node_and_every_nat_gateway() -> None:
    config = load_platform_config(raw_config(stack_document("prod")["config"]))
    cost = stack_cost(config, resolve_gpu_pools(config))
    region = "us-west-2"
    idle = (
        price("eks-control-plane", region)
        + 3 * price("m7i.2xlarge", region)
        + 3 * price("nat-gateway", region)  # one per AZ
        + price("p5.48xlarge", region)  # serve-mig: 1 node in a capacity reservation, billed used or not
    )
    assert cost.idle_hourly == idle
    assert round(cost.idle_hourly * HOURS_PER_MONTH, 2) == Decimal(str(cost.as_json()["idleMonthlyUsd"]))


def test_gcp_spot_is_priced_apart() -> None:
    config = load_platform_config(raw_config(stack_document("gke")["config"]))
    cost = stack_cost(config, resolve_gpu_pools(config))
    assert cost.spot_at_on_demand == [] and cost.max_spot_hourly < cost.max_on_demand_hourly
    assert load_prices()[("gcp", "us-central1", "g2-standard-8")].spot is not None


def test_plan_diff_in_a_fresh_clone_shows_a_raised_gpu_ceiling(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(PROJECT), str(clone)], check=True)
    # the working tree of this checkout, committed in the clone as the base (so the test sees today's code)
    ignore = shutil.ignore_patterns(".git", ".venv", "build", "__pycache__", ".*_cache")
    shutil.copytree(PROJECT, clone, ignore=ignore, dirs_exist_ok=True)
    git = ["git", "-C", str(clone), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "--quiet", "--allow-empty", "-m", "base"], check=True)
    stack_file = clone / "Pulumi.dev.yaml"
    document = yaml.safe_load(stack_file.read_text())
    document["config"]["ml-platform:gpuPools"][1]["maxNodes"] = 4  # train-a100: 2 -> 4 p4d per capacity type
    stack_file.write_text(yaml.safe_dump(document))
    subprocess.run([*git, "commit", "--quiet", "-am", "more A100s"], check=True)
    done = subprocess.run(
        [sys.executable, str(clone / "tools" / "plan_diff.py"), "HEAD~1"], cwd=clone, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    [dev] = [line for line in done.stdout.splitlines() if line.startswith("| dev |")]
    raised = 2 * price("p4d.24xlarge")  # two more nodes on each capacity type: spot and on-demand columns
    assert dev.count(f"(+${raised:,.2f})") == 2, dev
    # the same resources (a NodePool limit changed, no resource added); other stacks unchanged
    assert "→" not in dev.split("|")[2] and "No resource type or promised GPU changed." in done.stdout
    assert not (clone.parent / "base").exists()
    worktrees = subprocess.run([*git, "worktree", "list"], capture_output=True, text=True).stdout
    assert len(worktrees.splitlines()) == 1  # the temporary worktree is gone
    bad = subprocess.run(
        [sys.executable, str(clone / "tools" / "plan_diff.py"), "no-such-ref"],
        cwd=clone,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1 and bad.stderr.startswith("error: 'no-such-ref' is not a commit")


def test_the_ceiling_takes_the_dearest_type_a_pool_may_launch() -> None:
    from tools.cost import Price

    config = load_platform_config(raw_config(stack_document("dev")["config"]))
    pools = resolve_gpu_pools(config)
    prices = load_prices()
    dearer = Price(Decimal("2.5"), None, "https://example.com/test", "2026-01-01")
    with_alternative = {**prices, ("aws", "us-east-1", "g5.4xlarge"): dearer}
    base, more = stack_cost(config, pools, prices), stack_cost(config, pools, with_alternative)
    assert more.max_on_demand_hourly - base.max_on_demand_hourly == 4 * (Decimal("2.5") - price("g5.2xlarge"))
    assert more.unpriced_alternatives == ["notebooks: g5.xlarge"]


def test_a_damaged_price_table_is_one_clear_error(tmp_path: Path) -> None:
    from tools.cost import PriceTableError

    good = PRICES.read_text()
    header = next(line for line in good.splitlines() if line.startswith("cloud\t"))
    first = next(line for line in good.splitlines() if line.startswith("aws\tus-east-1\tg5.2xlarge"))
    cases = {
        "not a number": (good.replace(first, first.replace("1.212", "abc")), "'abc' is not a number"),
        "NaN": (good.replace(first, first.replace("1.212", "NaN")), "a price is a finite number"),
        "negative": (good.replace(first, first.replace("1.212", "-1")), "a price is a finite number"),
        "twice": (good + first + "\n", "is priced twice"),
        "no header": (good.replace(header, header.replace("\t", " ")), "must be the tab-separated header"),
        "short row": (good.replace(first, "\t".join(first.split("\t")[:5])), "5 tab-separated cells"),
        "empty": ("", "must be the tab-separated header"),
    }
    for what, (text, message) in cases.items():
        table = tmp_path / f"{what}.tsv"
        table.write_text(text)
        try:
            load_prices(table)
        except PriceTableError as error:
            assert message in str(error), (what, str(error))
        else:
            raise AssertionError(f"{what}: accepted")


def test_a_base_that_cannot_be_planned_is_reported_not_fatal() -> None:
    from collections import Counter

    from tools.plan_diff import StackPlan, report

    head = StackPlan(Counter({"aws:eks/cluster:Cluster": 1}), {"idleMonthlyUsd": 1.0})
    broken = StackPlan(Counter(), None, "1 problem(s) in Pulumi.dev.yaml")
    text = report("main", {"dev": broken}, {"dev": head})
    assert "| dev | no plan at the base |" in text and "the base could not be planned: 1 problem(s)" in text
