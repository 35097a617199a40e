"""Made-up business prose for the structure benchmark's documents (seeded, so repeatable).

The words, sentences, section topics and table rows that `structure_writer.Writer` prints; kept
apart from the page layout so either can change without the other.
"""

from __future__ import annotations

import random

NOUNS = (
    "budget",
    "supplier",
    "warehouse",
    "contract",
    "forecast",
    "customer",
    "network",
    "policy",
    "committee",
    "schedule",
    "inventory",
    "audit",
    "platform",
    "region",
    "survey",
    "pipeline",
    "shipment",
    "project",
    "portfolio",
    "workforce",
    "market",
    "facility",
    "service",
    "report",
    "process",
    "standard",
    "revenue",
    "margin",
    "partner",
    "review",
    "estimate",
    "programme",
    "department",
    "strategy",
    "proposal",
    "baseline",
    "milestone",
    "dataset",
    "framework",
)
ADJECTIVES = (
    "annual",
    "regional",
    "operational",
    "detailed",
    "initial",
    "revised",
    "external",
    "domestic",
    "quarterly",
    "significant",
    "modest",
    "central",
    "current",
    "previous",
    "overall",
    "local",
    "technical",
    "financial",
    "practical",
    "stable",
    "flexible",
    "preliminary",
    "independent",
)
HYPHENATED = (
    "long-term",
    "well-known",
    "cross-border",
    "real-time",
    "follow-up",
    "state-of-the-art",
    "cost-effective",
    "high-level",
    "mid-year",
    "year-on-year",
    "data-driven",
    "third-party",
    "small-scale",
    "decision-making",
    "end-to-end",
    "fixed-price",
)
VERBS = (
    "improves",
    "reduces",
    "supports",
    "requires",
    "affects",
    "extends",
    "replaces",
    "confirms",
    "outlines",
    "reflects",
    "delays",
    "strengthens",
    "simplifies",
    "covers",
    "limits",
    "shapes",
)
ADVERBS = ("clearly", "largely", "gradually", "directly", "partly", "steadily", "rarely")
OPENERS = (
    "In practice,",
    "As a result,",
    "For this reason,",
    "In the second quarter,",
    "By contrast,",
    "Over the past year,",
    "According to the survey,",
    "In most regions,",
    "At the same time,",
)
CLAUSES = (
    "while the {n} remains under review",
    "because the {a} {n} was delayed",
    "although the {n} met its {a} target",
    "which the {n} team had expected",
    "and the {h} {n} follows next month",
    "so that the {n} can be closed on time",
)
TOPIC_WORDS = (
    "Market",
    "Supply",
    "Operations",
    "Finance",
    "Staffing",
    "Logistics",
    "Quality",
    "Risk",
    "Compliance",
    "Procurement",
    "Energy",
    "Facilities",
    "Customers",
    "Pricing",
    "Training",
    "Research",
    "Security",
    "Maintenance",
    "Planning",
    "Outlook",
    "Investment",
    "Governance",
)
TOPIC_TAILS = (
    "Overview",
    "Review",
    "Trends",
    "Costs",
    "Targets",
    "Results",
    "Changes",
    "Priorities",
    "Methods",
    "Risks",
    "Measures",
    "Findings",
    "Plans",
    "Performance",
    "Assumptions",
)
REGIONS = ("North", "South", "East", "West", "Central", "Coastal", "Alpine", "Metro", "Rural")
UNITS = ("Tons", "Orders", "Staff", "Sites", "Hours")


class Prose:
    """Sentences, paragraphs, unique topics and table rows from one seeded random source."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.used_topics: set[str] = set()

    def sentence(self) -> str:
        r = self.rng

        def noun() -> str:
            return r.choice(NOUNS)

        adj = r.choice(HYPHENATED) if r.random() < 0.3 else r.choice(ADJECTIVES)
        parts = [
            r.choice(OPENERS) if r.random() < 0.3 else "",
            f"the {adj} {noun()}",
            r.choice(ADVERBS) if r.random() < 0.3 else "",
            r.choice(VERBS),
            f"the {r.choice(ADJECTIVES)} {noun()} of the {noun()}",
        ]
        if r.random() < 0.5:
            clause = r.choice(CLAUSES).format(
                n=noun(), a=r.choice(ADJECTIVES), h=r.choice(HYPHENATED)
            )
            parts.append(clause)
        text = " ".join(p for p in parts if p)
        return text[0].upper() + text[1:] + "."

    def paragraph_text(self, low: int = 3, high: int = 6) -> str:
        return " ".join(self.sentence() for _ in range(self.rng.randint(low, high)))

    def topic(self) -> str:
        for _ in range(1000):
            name = f"{self.rng.choice(TOPIC_WORDS)} {self.rng.choice(TOPIC_TAILS)}"
            if name not in self.used_topics:
                self.used_topics.add(name)
                return name
        raise RuntimeError("out of topics")

    def table_rows(self, columns: int, rows: int) -> tuple[list[list[str]], list[bool]]:
        """A header and `rows` rows: a region name, then figures (numbers and short words)."""
        r = self.rng
        header = ["Region", *r.sample(UNITS, columns - 2), "Status"][:columns]
        body = []
        for region in r.sample(REGIONS, rows):
            cells = [region]
            for _ in range(columns - 2):
                cells.append(
                    r.choice(
                        [
                            f"{r.randint(1, 9)},{r.randint(0, 999):03d}",
                            f"{r.randint(10, 99)}.{r.randint(0, 9)}",
                            str(r.randint(2, 480)),
                        ]
                    )
                )
            cells.append(r.choice(["open", "closed", "on hold", "late", "done"]))
            body.append(cells)
        numeric = [False] + [True] * (columns - 2) + [False]
        return [header, *body], numeric
