"""What a stack costs idle and the most its GPU pools can burn, from the pinned price table `tools/prices.tsv`.

Figures are list prices per hour (730 hours a month) from a dated table, never live prices: they show the size
of a change (a PR that doubles the maximum GPU spend), not the bill. Spot prices are typical, not guaranteed.
Usage-billed items (data transfer, NAT and load-balancer traffic, EBS/EFS/S3 storage, logs) are left out.
A price the table does not have is named, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from components.config.platform import PlatformConfig
from components.gpu_pools import ResolvedGpuPool
from components.team_quotas import gpu_borrowing, gpu_quota

PRICES = Path(__file__).resolve().parent / "prices.tsv"
HOURS_PER_MONTH = Decimal(730)


@dataclass(frozen=True)
class Price:
    on_demand: Decimal | None
    spot: Decimal | None
    source: str
    date: str


COLUMNS = ["cloud", "region", "item", "on_demand_usd_per_hour", "spot_usd_per_hour", "source", "source_date"]


class PriceTableError(Exception):
    """The price table cannot be read: one line that names the file, the line and what is wrong."""


def _amount(text: str, where: str, column: str) -> Decimal | None:
    if not text:
        return None
    try:
        value = Decimal(text)
    except ArithmeticError:
        raise PriceTableError(
            f"{where}: {column} {text!r} is not a number (write dollars per hour, e.g. 1.212)"
        ) from None
    if not value.is_finite() or value < 0:
        raise PriceTableError(f"{where}: {column} {text!r}: a price is a finite number of dollars, 0 or more")
    return value


def load_prices(path: Path = PRICES) -> dict[tuple[str, str, str], Price]:
    """(cloud, region, item) -> price; `all` as the region: the same everywhere. PriceTableError when a line is
    malformed, a price is not a finite non-negative number, or an item appears twice."""
    prices: dict[tuple[str, str, str], Price] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PriceTableError(f"{path}: cannot read: {exc}") from None
    numbered = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip() and not line.startswith("#")]
    if not numbered or numbered[0][1].rstrip("\r").split("\t") != COLUMNS:
        raise PriceTableError(
            f"{path}: the first line that is not a comment must be the tab-separated header {' '.join(COLUMNS)}"
        )
    for n, line in numbered[1:]:
        where = f"{path} line {n}"
        cells = line.rstrip("\r").split("\t")
        if len(cells) != len(COLUMNS):
            raise PriceTableError(f"{where}: {len(cells)} tab-separated cells, expected {len(COLUMNS)}")
        row = dict(zip(COLUMNS, cells, strict=True))
        key = (row["cloud"], row["region"], row["item"])
        if key in prices:
            raise PriceTableError(f"{where}: {' '.join(key)} is priced twice")
        on_demand = _amount(row["on_demand_usd_per_hour"], where, "on_demand_usd_per_hour")
        spot = _amount(row["spot_usd_per_hour"], where, "spot_usd_per_hour")
        if on_demand is None and spot is None:
            raise PriceTableError(f"{where}: no price at all")
        if not row["source"] or not row["source_date"]:
            raise PriceTableError(f"{where}: every price names its source and the source's date")
        prices[key] = Price(on_demand, spot, row["source"], row["source_date"])
    return prices


@dataclass
class CostSummary:
    idle_hourly: Decimal = Decimal(0)
    idle_items: list[tuple[str, Decimal]] = field(default_factory=list)
    max_spot_hourly: Decimal = Decimal(0)
    max_on_demand_hourly: Decimal = Decimal(0)
    # team -> GPU key -> (guaranteed, borrowable)
    promised: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    # spot pools priced at on-demand (the table has no typical spot price for them): an upper bound
    spot_at_on_demand: list[str] = field(default_factory=list)
    # other instance types a pool may launch (Karpenter) that the table has no price for
    unpriced_alternatives: list[str] = field(default_factory=list)
    # the dates of the table's sources, for the summary's heading
    table_dates: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "idleMonthlyUsd": float(round(self.idle_hourly * HOURS_PER_MONTH, 2)),
            "maxGpuSpotHourlyUsd": float(round(self.max_spot_hourly, 2)),
            "maxGpuOnDemandHourlyUsd": float(round(self.max_on_demand_hourly, 2)),
            "promisedGpus": {t: {k: list(v) for k, v in keys.items()} for t, keys in self.promised.items()},
            "missingPrices": self.missing,
            "spotAtOnDemand": self.spot_at_on_demand,
            "unpricedAlternatives": self.unpriced_alternatives,
        }


def _price(prices: dict[tuple[str, str, str], Price], cloud: str, region: str, item: str) -> Price | None:
    return prices.get((cloud, region, item)) or prices.get((cloud, "all", item))


def _hourly(price: Price | None, capacity: str) -> Decimal | None:
    if price is None:
        return None
    # An On-Demand Capacity Reservation or Capacity Block bills at (about) the on-demand rate whether used or not.
    return price.spot if capacity == "spot" else price.on_demand


def stack_cost(
    config: PlatformConfig, pools: tuple[ResolvedGpuPool, ...], prices: dict[tuple[str, str, str], Price] | None = None
) -> CostSummary:
    prices = load_prices() if prices is None else prices
    cost = CostSummary(table_dates=tuple(sorted({p.date for p in prices.values() if p.date != "undated"})))
    cloud, region = config.cluster.cloud, config.cluster.region or ""

    def add_idle(what: str, item: str, count: int, capacity: str = "on-demand") -> None:
        hourly = _hourly(_price(prices, cloud, region, item), capacity)
        if hourly is None:
            cost.missing.append(f"{cloud} {region} {item} ({capacity})")
            return
        cost.idle_hourly += hourly * count
        cost.idle_items.append((what, hourly * count))

    if cloud != "existing":
        add_idle("control plane", "eks-control-plane" if cloud == "aws" else "gke-cluster-fee", 1)
        system = config.cluster.system_nodes
        add_idle(f"{system.min_nodes} system nodes {system.instance_type}", str(system.instance_type), system.min_nodes)
        nat = config.cluster.vpc.nat_gateways
        if config.cluster.vpc.existing is None:
            count = (config.cluster.vpc.az_count if nat == "one-per-az" else 1) if cloud == "aws" else 1
            add_idle(
                f"{count} NAT gateway{'s' if count > 1 else ''}",
                "nat-gateway" if cloud == "aws" else "cloud-nat",
                count,
            )
    for pool in pools:
        if cloud == "existing":
            break  # the owner's nodes: no price of ours
        item = pool.shape.instance_type
        # Karpenter may launch any type of the shape: the ceiling takes the dearest one the table prices
        priced = [t for t in pool.shape.instance_types if _price(prices, cloud, region, t) is not None]
        unpriced = [t for t in pool.shape.instance_types[1:] if t not in priced]
        if unpriced and item in priced:
            cost.unpriced_alternatives.append(f"{pool.name}: {', '.join(unpriced)}")
        for capacity in pool.capacity_types:
            hourly: Decimal | None = None
            for candidate in priced or [item]:
                price = _price(prices, cloud, region, candidate)
                value = _hourly(price, capacity)
                if value is None and capacity == "spot" and price is not None and price.on_demand is not None:
                    value = price.on_demand  # a spot price never exceeds on-demand: an upper bound
                    if f"{pool.name} ({candidate})" not in cost.spot_at_on_demand:
                        cost.spot_at_on_demand.append(f"{pool.name} ({candidate})")
                if value is not None and (hourly is None or value > hourly):
                    hourly = value
            if hourly is None:
                cost.missing.append(f"{cloud} {region} {item} ({capacity})")
                continue
            if (baseline := pool.baseline_nodes(capacity)) > 0:
                cost.idle_hourly += hourly * baseline
                cost.idle_items.append((f"pool {pool.name}: {baseline} always-on {capacity} {item}", hourly * baseline))
            at_max = hourly * pool.config.max_nodes
            if capacity == "spot":
                cost.max_spot_hourly += at_max
            else:
                cost.max_on_demand_hourly += at_max
    for team in config.teams:
        quota, borrowing = gpu_quota(team, pools), gpu_borrowing(team, pools)
        cost.promised[team.name] = {key: (quota[key], borrowing.get(key, 0)) for key in sorted(quota)}
    return cost


def _usd(amount: Decimal) -> str:
    return f"${amount:,.2f}"


def cost_lines(cost: CostSummary, cloud: str) -> list[str]:
    """The plan summary's cost and capacity lines (`stack_cost` computed them)."""
    if cloud == "existing":
        lines = ["Cost: an existing cluster: its nodes and control plane are its owner's; nothing here is priced"]
        return lines + _promised_lines(cost)
    table = f"tools/prices.tsv, {_dates(cost.table_dates)}"
    lines = [f"Cost (list prices from {table}; usage-billed traffic and storage not included):"]
    idle = ", ".join(f"{what} {_usd(amount * HOURS_PER_MONTH)}" for what, amount in cost.idle_items) or "nothing"
    lines.append(f"  idle: {_usd(cost.idle_hourly * HOURS_PER_MONTH)}/month ({idle})")
    total = cost.max_spot_hourly + cost.max_on_demand_hourly
    lines.append(
        f"  GPU pools at maxNodes: spot {_usd(cost.max_spot_hourly)}/h, on-demand and reserved "
        f"{_usd(cost.max_on_demand_hourly)}/h; "
        f"at most {_usd(total)}/h, {_usd(total * HOURS_PER_MONTH)}/month"
    )
    if cost.spot_at_on_demand:
        lines.append(
            "  spot priced at on-demand (no typical spot price in the table; an upper bound): "
            + ", ".join(cost.spot_at_on_demand)
        )
    if cost.unpriced_alternatives:
        lines.append(
            "  instance types a pool may also launch, with no price in the table (the ceiling assumes the priced "
            "ones): " + "; ".join(cost.unpriced_alternatives)
        )
    lines += _promised_lines(cost)
    if cost.missing:
        lines.append("  no price in the table for: " + "; ".join(cost.missing) + " (left out of the figures above)")
    return lines


def _promised_lines(cost: CostSummary) -> list[str]:
    lines = []
    for team, keys in cost.promised.items():
        shown = ", ".join(f"{key} {n} (+{b} borrowable)" for key, (n, b) in keys.items()) or "no GPUs"
        lines.append(f"  GPUs promised to {team}: {shown}")
    return lines


def _dates(dates: tuple[str, ...]) -> str:
    return f"prices of {dates[0]} to {dates[-1]}" if len(dates) > 1 else f"prices of {dates[0]}" if dates else "undated"
