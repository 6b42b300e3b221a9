"""The report as a reader sees it: headless Chromium at 1280 px, a screenshot and the page widths.

    python benchmarks/report_page.py REPORT.html [--out page.png] [--width 1280]

Needs `chromium` (Debian: apt-get install chromium). Prints the page's scroll width against the
window, each figure's rendered width against its natural width, and whether anything spills over
the right edge (the goal: figures scale to the page width, none is cut off). Exit code 1 when
something spills over.
"""

import argparse
import html
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PROBE = """<script>
window.addEventListener('load', () => {
  const imgs = [...document.images].map(i => ({id: i.alt, shown: i.getBoundingClientRect().width,
                                                natural: i.naturalWidth,
                                                right: i.getBoundingClientRect().right}));
  const wide = [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right >
      document.documentElement.clientWidth + 1 && !e.closest('div.wide') && !e.closest('pre')).map(e => e.tagName);
  const out = {scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth,
               images: imgs, spilling: wide.slice(0, 10)};
  const p = document.createElement('pre'); p.id = 'probe'; p.textContent = 'PROBE' + JSON.stringify(out) + 'EBORP';
  document.body.appendChild(p);
});
</script>"""


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return name
    sys.exit("chromium not found: apt-get install chromium")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", type=Path)
    ap.add_argument("--out", type=Path, default=Path("report_page.png"))
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=4000)
    args = ap.parse_args()
    browser = chromium()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--window-size={args.width},{args.height}"]
    subprocess.run([browser, *flags, f"--screenshot={args.out.resolve()}", args.report.resolve().as_uri()],
                   check=True, capture_output=True)
    with tempfile.TemporaryDirectory() as tmp:
        probed = Path(tmp) / "probed.html"
        probed.write_text(args.report.read_text().replace("</body>", PROBE + "</body>"))
        dom = subprocess.run([browser, *flags, "--virtual-time-budget=5000", "--dump-dom", probed.as_uri()],
                             check=True, capture_output=True, text=True).stdout
    found = re.search(r'<pre id="probe">PROBE(.*?)EBORP</pre>', dom, re.S)
    if not found:
        sys.exit("the page did not report its layout (probe script did not run)")
    m = json.loads(html.unescape(found.group(1)))
    print(f"window {args.width} px: page scroll width {m['scroll']} px, client width {m['client']} px")
    for i in m["images"]:
        scaled = "" if i["shown"] >= i["natural"] else f" (scaled from {i['natural']} px)"
        print(f"  figure {i['id']:<34} {i['shown']:7.0f} px wide{scaled}, right edge {i['right']:.0f} px")
    overflow = m["scroll"] > m["client"] or any(i["right"] > m["client"] + 1 for i in m["images"]) or m["spilling"]
    print(f"screenshot: {args.out}")
    print("spills over the right edge: " + (f"YES ({', '.join(m['spilling']) or 'figures'})" if overflow else "no"))
    return 1 if overflow else 0


if __name__ == "__main__":
    sys.exit(main())
