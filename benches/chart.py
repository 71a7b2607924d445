"""Draws the benchmark picture (SVG, no dependencies): per-row check cost against its
baselines, and key-validation throughput against its baselines, from the figure files
that benches/checks.sh and benches/api_keys.sh write (benches/results/checks.txt and
api_keys.txt: one "key value" per line). Usage: python3 benches/chart.py OUT.svg FIGURES.txt...
Bars are on a log scale: the baselines differ from our figures by up to 1000x."""
import math
import sys

PANELS = [
    ("Per-row cost of a check over a 1,000,000-row scan (ns/row, lower is better)", [
        ("floor_ns", "trivial pgrx function (floor)", "#999999"),
        ("role_user_ns", "authz_check, role-default user", "#2b6cb0"),
        ("grants_user_ns", "authz_check, user with 10,000 grants", "#2b6cb0"),
        ("can_role_ns", "authz_can, role-default principal", "#2b6cb0"),
        ("cache_off_ns", "authz_check, cache off", "#dd6b20"),
        ("plpgsql_ns", "PL/pgSQL resolver (baseline)", "#c53030"),
    ]),
    ("Throughput, pgbench -M prepared, 2 clients (TPS, higher is better)", [
        ("select1_tps", "SELECT 1", "#999999"),
        ("check_tps", "one random authz_check", "#2b6cb0"),
        ("validate_tps", "api_key_validate, valid key", "#2b6cb0"),
        ("sha256_tps", "plain SQL digest() + lookup", "#dd6b20"),
        ("bcrypt_tps", "bcrypt cost 10 (baseline)", "#c53030"),
    ]),
]


def read_figures(paths):
    figures = {}
    for path in paths:
        with open(path) as f:
            for line in f:
                if line.strip():
                    key, value = line.split()[:2]
                    figures[key] = float(value)
    return figures


def svg(figures):
    width, label_w, bar_w, row_h = 900, 300, 480, 26
    out, y = [], 20
    for title, rows in PANELS:
        present = [(k, label, color) for k, label, color in rows if figures.get(k, 0) > 0]
        if not present:
            continue
        out.append(f'<text x="10" y="{y}" font-size="15" font-weight="bold">{title}</text>')
        y += 12
        top = max(figures[k] for k, _, _ in present)
        scale = bar_w / math.log10(top * 10)  # log scale from 0.1
        for key, label, color in present:
            value = figures[key]
            length = max(2.0, math.log10(value * 10) * scale)
            out.append(f'<text x="{label_w - 8}" y="{y + 17}" font-size="13" text-anchor="end">{label}</text>')
            out.append(f'<rect x="{label_w}" y="{y + 4}" width="{length:.1f}" height="{row_h - 8}" fill="{color}"/>')
            out.append(f'<text x="{label_w + length + 6:.1f}" y="{y + 17}" font-size="13">{value:,.0f}</text>')
            y += row_h
        y += 24
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y}" '
            f'font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>')
    return "\n".join([head, *out, "</svg>"]) + "\n"


if __name__ == "__main__":
    target, *paths = sys.argv[1:]
    with open(target, "w") as f:
        f.write(svg(read_figures(paths)))
    print(f"wrote {target}")
