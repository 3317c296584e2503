"""docs/benchmarks.md from a run's results, and a readable summary of a py-spy profile."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
TUNING = BENCH / "tuning.md"

# The targets of issue 8.
PEER_RATIO = 2.5
CEILING_RATIO = 0.5
BCRYPT_RATIO = 0.9
TIMING_BAND = (0.9, 1.1)
SCALE_KEEP = 0.95
RSS_LIMIT_MIB = 100
P99_C32_MS = 12.0


def _f(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def _ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def table(data: dict[str, Any]) -> str:
    summary = data["summary"]
    ceiling = summary.get("ceiling", {}).get("rps")
    peer = summary.get("peer_token", {}).get("rps")
    bcrypt_rps = summary.get("raw_bcrypt", {}).get("rps")
    lines = [
        "| what | req/s: median (min–max) | p50 ms | p99 ms | × ceiling | × peer "
        "| × raw bcrypt | app CPU µs/req | DB CPU µs/req | worker RSS / PSS / private MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, target in data["targets"].items():
        if name not in summary:
            continue
        s = summary[name]
        rps = s["rps"]
        digits = 1 if rps < 100 else 0
        spread = f"{_f(rps, digits)} ({_f(s['rps_min'], digits)}–{_f(s['rps_max'], digits)})"
        vs_bcrypt = (
            f"{rps / bcrypt_rps:.2f}"
            if bcrypt_rps and ("sign_in" in name or name == "raw_bcrypt")
            else ""
        )
        vs_ceiling = f"{rps / ceiling:.2f}" if ceiling and target["kind"] == "wrk" else ""
        vs_peer = f"{rps / peer:.2f}" if peer and target["kind"] == "wrk" else ""
        errors = f" ⚠ {s['errors']} errors" if s.get("errors") else ""
        memory = (
            f"{_f(s.get('worker_rss_mib'))} / {_f(s.get('worker_pss_mib'))} / "
            f"{_f(s.get('worker_uss_mib'))}"
            if s.get("worker_pss_mib")
            else _f(s.get("worker_rss_mib"))
        )
        lines.append(
            f"| {target['label']}{errors} | {spread} | {_ms(s['p50_ms'])} | {_ms(s['p99_ms'])} "
            f"| {vs_ceiling} | {vs_peer} | {vs_bcrypt} | {_f(s.get('app_cpu_us'))} "
            f"| {_f(s.get('db_cpu_us'))} | {memory} |"
        )
    return "\n".join(lines)


def timing_table(timing: dict[str, Any]) -> str:
    lines = [
        "| sign-in with | n | median ms | p10–p90 ms | IQR ms | stdev ms "
        "| ÷ wrong-password median |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    wrong = timing["wrong_password"]["median"]
    for kind, label in (
        ("unknown_email", "an unknown email"),
        ("wrong_password", "a wrong password"),
        ("locked_user", "a locked user (any password)"),
    ):
        t = timing[kind]
        lines.append(
            f"| {label} | {t['n']} | {t['median']:.1f} | {t['p10']:.1f}–{t['p90']:.1f} "
            f"| {t['p75'] - t['p25']:.1f} | {t['stdev']:.1f} | {t['median'] / wrong:.3f} |"
        )
    return "\n".join(lines)


def verdicts(data: dict[str, Any]) -> list[tuple[str, bool | None, str]]:
    s = data["summary"]
    out: list[tuple[str, bool | None, str]] = []

    def rps(name: str) -> float | None:
        return s.get(name, {}).get("rps")

    account, peer, ceiling = rps("th_account"), rps("peer_token"), rps("ceiling")
    if account and peer:
        ratios = [
            a["rps"] / p["rps"]
            for a, p in zip(s["th_account"]["reps"], s["peer_token"]["reps"], strict=False)
        ]
        out.append((
            f"bearer GET /api/v1/account ≥ {PEER_RATIO}× Flask-Security-Too's token route",
            account / peer >= PEER_RATIO,
            f"{account / peer:.2f}× (per repetition {min(ratios):.2f}–{max(ratios):.2f})",
        ))  # fmt: skip
    if account and ceiling:
        ratios = [
            a["rps"] / c["rps"]
            for a, c in zip(s["th_account"]["reps"], s["ceiling"]["reps"], strict=False)
        ]
        out.append((
            f"bearer GET /api/v1/account ≥ {CEILING_RATIO:.0%} of the bare-Flask ceiling",
            account / ceiling >= CEILING_RATIO,
            f"{account / ceiling:.0%} (per repetition {min(ratios):.0%}–{max(ratios):.0%})",
        ))  # fmt: skip
    crowded = s.get("th_account_c32", {})
    if crowded.get("p99_ms") is not None:
        out.append((
            f"bearer GET /api/v1/account p99 at 32 connections ≤ {P99_C32_MS:g} ms",
            crowded["p99_ms"] <= P99_C32_MS,
            f"p99 {crowded['p99_ms']:.1f} ms (median of repetitions; p50 "
            f"{crowded['p50_ms']:.1f} ms, {crowded['rps']:,.0f} req/s)",
        ))  # fmt: skip
    bcrypt_rps = rps("raw_bcrypt")
    for name, scale in (("th_sign_in", "1 k"), ("th_sign_in_1m", "1 M")):
        if rps(name) and bcrypt_rps:
            ratio = rps(name) / bcrypt_rps  # type: ignore[operator]
            out.append((
                f"password sign-ins/s ≥ {BCRYPT_RATIO:.0%} of raw bcrypt checks/s ({scale} users)",
                ratio >= BCRYPT_RATIO,
                f"{rps(name):.2f} vs {bcrypt_rps:.2f}/s: {ratio:.1%}",
            ))  # fmt: skip
    timing = data.get("timing")
    if timing:
        ratio = timing["unknown_over_wrong"]
        low, high = TIMING_BAND
        out.append((
            f"unknown-email ÷ wrong-password median within {low}–{high}",
            low <= ratio <= high,
            f"{ratio:.3f} (locked ÷ wrong {timing['locked_over_wrong']:.3f})",
        ))  # fmt: skip
        if "unknown_vs_wrong_p" in timing:
            p_unknown, p_locked = timing["unknown_vs_wrong_p"], timing["locked_vs_wrong_p"]
            out.append((
                "Mann–Whitney U does not tell unknown-email from wrong-password (p ≥ 0.01)",
                p_unknown >= 0.01,
                f"p = {p_unknown:.3g} (locked vs wrong p = {p_locked:.3g})",
            ))  # fmt: skip
    for small, large, what in (
        ("th_account", "th_account_1m", "key check"),
        ("th_sign_in", "th_sign_in_1m", "sign-in"),
    ):
        if rps(small) and rps(large):
            paired = [
                b["rps"] / a["rps"]
                for a, b in zip(s[small]["reps"], s[large]["reps"], strict=False)
                if a["rps"]
            ]
            ratio = sorted(paired)[len(paired) // 2]
            # The 1 k target's own repetitions show how much the same thing varies by itself.
            noise = s[small]["rps_min"] / s[small]["rps_max"]
            p50s = (s[small]["p50_ms"], s[large]["p50_ms"])
            out.append((
                f"no measurable growth from 1 k to 1 M ({what}): 1 M at ≥ {SCALE_KEEP:.0%} of "
                "the 1 k rate, or within the 1 k rate's own spread",
                ratio >= min(SCALE_KEEP, noise),
                f"1 M at {ratio:.0%} of 1 k (median of paired repetitions; 1 k's own spread "
                f"{noise:.0%}–100 %); p50 {_ms(p50s[0])} → {_ms(p50s[1])} ms",
            ))  # fmt: skip

    def serving(name: str) -> bool:  # the instances serving key calls, records and sign-ins
        return name.startswith("th_") and name != "th_sso"

    rss = [v for k, v in data["max_worker_rss_mib"].items() if serving(k) and v]
    if rss:
        pss = [v for k, v in data.get("max_worker_pss_mib", {}).items() if serving(k) and v]
        private = [v for k, v in data.get("max_worker_private_mib", {}).items() if serving(k) and v]
        shared = (
            f"; of it, PSS {max(pss):.0f} MiB and private (unshared) {max(private):.0f} MiB: "
            "the rest is the master's memory, shared copy-on-write (preload_app)"
            if pss and private
            else ""
        )
        sso = data["max_worker_rss_mib"].get("th_sso")
        sso_note = (
            f". A worker that has served SSO (pysaml2 loaded at its first SSO request): "
            f"{sso:.0f} MiB"
            if sso
            else ""
        )
        out.append((
            f"Terminus Hub worker RSS ≤ {RSS_LIMIT_MIB} MiB (after the key calls, records and "
            "sign-ins)",
            max(rss) <= RSS_LIMIT_MIB,
            f"largest seen {max(rss):.0f} MiB (read from /proc after every run){shared}"
            f"{sso_note}",
        ))  # fmt: skip
    return out


def _load_note(data: dict[str, Any]) -> str:
    loads = [
        r["other_cores"]
        for t in data["summary"].values()
        for r in t["reps"]
        if r.get("other_cores") is not None
    ]
    if not loads:
        return ""
    all_runs = [r for t in data["summary"].values() for r in t["reps"] if "rps" in r]
    runs = len(all_runs)
    recycled = sum(bool(r.get("workers_recycled")) for r in all_runs)
    loads.sort()
    return (
        "**Other load**: CPU busy on the machine outside the measured processes (other "
        "sessions' work, Redis, the kernel), during the wrk runs: median "
        f"{loads[len(loads) // 2]:.2f} cores, at most {loads[-1]:.2f}, of "
        f"{data['facts']['cores']}. Absolute rates move with it; the alternation keeps "
        "ratios fair. *app CPU µs/req* (the app's gunicorn master and workers) and *DB CPU "
        "µs/req* (its PostgreSQL backends) are per request and move less with other load; "
        "runs during which gunicorn replaced a worker (max_requests) give no CPU figure "
        f"({recycled} of {runs} runs)."
    )


def render(data: dict[str, Any]) -> str:
    facts = data["facts"]
    args = data["args"]
    summary = data["summary"]
    parts = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`bench/run.py`); numbers from one run on the machine below. "
        "Speed is checked by this benchmark, not by timed unit tests.",
        "",
        "## Result",
        "",
        table(data),
        "",
        f"Each wrk run lasted {args['duration']:g} s ({2 * args['duration']:g} s for the "
        f"bcrypt-bound sign-ins and raw bcrypt); {args['reps']} repetitions, the apps "
        "alternating within each repetition (ceiling, peer, Terminus Hub's endpoints, raw bcrypt, "
        "SSO, then again), after a "
        f"{args['warmup']:g} s warm-up of each. req/s is the median of the repetitions with "
        "their range; p50/p99 are wrk's latency percentiles (median over repetitions); worker "
        "RSS is the largest VmRSS of any gunicorn worker of that app, read from /proc after "
        "each run. Ratios divide medians. Zero errors unless marked (wrk's non-2xx/3xx and "
        "socket errors; every target is probed first for its expected status).",
        "",
        _load_note(data),
        "",
        "## Targets",
        "",
        "| target | holds | measured |",
        "|---|---|---|",
    ]
    for label, ok, measured in verdicts(data):
        mark = "✅ met" if ok else "❌ not met" if ok is False else "–"
        parts.append(f"| {label} | {mark} | {measured} |")
    timing = data.get("timing")
    if timing:
        parts += [
            "",
            "## Timing equality",
            "",
            "One sign-in at a time from a Python client, the three kinds interleaved in a "
            "shuffled order, each over a fresh connection (statuses seen: "
            f"{', '.join(map(str, timing['statuses']))}, all the same page). Each wrong-password "
            "sample uses another user, so none reaches the lockout threshold.",
            "",
            timing_table(timing),
        ]
    sso = summary.get("th_sso")
    if sso:
        rep = sso["reps"][-1]
        parts += [
            "",
            "## SSO round trip",
            "",
            "`GET /sso/bench/login` (signed AuthnRequest), the pysaml2 IdP of `tests/saml_idp.py` "
            "parses it and signs a response (in the bench process, with xmlsec1, on the same "
            "cores), then `POST /sso/bench/acs` checks it and starts a session. Sequential, "
            f"one round trip at a time: {sso['rps']:.1f} round trips/s including the IdP's "
            f"work. The SP's own time per round trip (login + ACS): p50 {_ms(sso['p50_ms'])} "
            f"ms, p99 {_ms(sso['p99_ms'])} ms; the ACS alone: p50 {_ms(rep['acs']['median'])} "
            f"ms, p99 {_ms(rep['acs']['p99'])} ms (last repetition).",
        ]
    parts += [
        "",
        "## How it was run",
        "",
        "```sh",
        "make bench            # = .venv/bin/python bench/run.py",
        "```",
        "",
        "Every app runs under gunicorn the same way, from the project's `gunicorn.conf.py` "
        f"with {args['workers']} sync workers:",
        "",
        "```sh",
        *[f"{cmd}" for cmd in data["servers"].values()],
        "```",
        "",
        "The load (Debian's wrk on loopback, the same cores):",
        "",
        "```sh",
        *[t["command"] for t in data["targets"].values() if t["kind"] == "wrk"],
        "```",
        "",
        "- **Ceiling** (`bench/peers/ceiling.py`): a bare Flask route returning the same small "
        "JSON as `GET /api/v1/account`; no auth, no database. Project `.venv`.",
        "- **Peer** (`bench/peers/fst_app.py`, `bench/.venv-peer` from "
        "`bench/peers/requirements.txt`): Flask-Security-Too's documented setup "
        '(fsqla_v3 models, `SQLAlchemyUserDatastore`), `@auth_required("token")`, the '
        "`Authentication-Token` header, its users in PostgreSQL "
        f"({data['seeded']['users_small']:,} users). Flask, Werkzeug, SQLAlchemy, psycopg and "
        "gunicorn at the project's versions, so only the authentication layer differs.",
        "- **Terminus Hub**: `wsgi:app` with production settings: PostgreSQL, Redis as "
        "rate-limit storage (moving window), bcrypt cost 12, CSRF on, secure headers, "
        "access log on (as every app). Databases made by `flask db upgrade`, then "
        f"{data['seeded']['users_small']:,} users, accounts and keys (one database) and "
        f"{data['seeded']['users_large']:,} (a copy of it, bulk-loaded with COPY; every user "
        "shares one real cost-12 bcrypt hash, keys are SHA-256 as stored by the product).",
        "- **Bench-only settings** (stated, as the issue asks): `FLASK_TERMINUS_API_RATE_LIMIT`, "
        "`FLASK_TERMINUS_SIGN_IN_RATE_LIMIT` and `FLASK_TERMINUS_SSO_RATE_LIMIT` set to "
        f"`{data['bench_rate_limit']}` so no limit trips; every request is still counted in "
        "Redis and answered with its `X-RateLimit-*` headers. (A limit of millions per minute "
        "would make the moving window keep a list of millions of hits in Redis, a cost "
        "production never sees at 600 per minute.) `FLASK_SESSION_COOKIE_SECURE=false`, "
        "because the load runs over plain HTTP on loopback; it changes no work. CSRF stays "
        "on: the form posts carry a pre-sign-in session cookie and the CSRF token bound to it "
        "(`bench/lua/post_form.lua`); sign-ins rotate over 40 users spread over the table.",
        "- **Raw bcrypt**: `bcrypt.checkpw` of a 64-byte secret (what the product checks: a "
        "hex SHA-256 of the password) against the users' stored cost-12 hash, in "
        f"{args['workers']} processes (one per worker) for the same duration.",
        "- **Scale**: the key check and the sign-in against the 1 M database run in the same "
        "alternation as the 1 k ones, by a second Terminus Hub instance started the same way.",
        "",
        "Setup and phase times of this run:",
        "",
        *[f"- {name}: {seconds:.0f} s" for name, seconds in data["timings"].items()],
        "",
        "## Machine",
        "",
        *[f"- {name.replace('_', ' ')}: {value}" for name, value in facts.items()],
        "",
        "Load generator, PostgreSQL, Redis and the apps share the same cores, as they would in "
        "a single-machine deployment; ratios measured side by side in one run cancel most of "
        "that, absolute numbers do not transfer to other machines.",
    ]
    if TUNING.exists():
        parts += ["", TUNING.read_text().rstrip()]
    return "\n".join(parts) + "\n"


# -- py-spy ----------------------------------------------------------------------------------

_FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>[^:]+):?(?P<line>\d*)\)$")


def _short(file: str) -> str:
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file


def _package(file: str) -> str:
    short = _short(file)
    return short.split("/", 1)[0].removesuffix(".py")


def profile_summary(raw: str, top: int = 30) -> str:
    """Inclusive and self time per function, and self time per package, from py-spy raw."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        names = []
        for frame in stack.split(";"):
            match = _FRAME.match(frame)
            if match is None:
                names.append(frame)
                continue
            names.append(f"{match['func']} ({_short(match['file'])})")
        if not any("wsgi_app" in n or "handle_request" in n for n in names):
            continue  # idle workers (accept loop) are not request time
        total += count
        for name in set(names):
            inclusive[name] += count
        own[names[-1]] += count
        match = _FRAME.match(stack.split(";")[-1])
        packages[_package(match["file"]) if match else "?"] += count
    if not total:
        return "no request samples"
    out = [f"{total} samples inside requests", "", "Self time by package:", ""]
    out += [f"- {pkg}: {n / total:.1%}" for pkg, n in packages.most_common(15)]
    out += ["", "Inclusive time:", ""]
    out += [f"- {n / total:6.1%}  {name}" for name, n in inclusive.most_common(top)]
    out += ["", "Self time:", ""]
    out += [f"- {n / total:6.1%}  {name}" for name, n in own.most_common(top)]
    return "\n".join(out)
