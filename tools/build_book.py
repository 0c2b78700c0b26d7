"""Build the course book (Jupyter Book 1.x) with MathJax served from the book itself.

Usage (from the repository root)::

    uv run --frozen python tools/build_book.py            # HTML into _build/html/
    uv run --frozen python tools/build_book.py --all      # rebuild every page

Steps:

1. Make sure ``node_modules/mathjax`` exists (``npm ci``, or ``npm install`` when there is no
   ``package-lock.json``). The MathJax version is pinned in ``package.json``.
2. Stage the parts of MathJax the book needs into ``_build/book-assets/_static/mathjax/``. Sphinx
   copies ``_build/book-assets`` into the HTML output through ``html_extra_path`` (see
   ``_config.yml``); nothing that npm provides is committed.
3. Run ``jupyter-book build`` with the current Python, with warnings as errors
   (``-W -n --keep-going``).
4. Fail if any built page loads a script or stylesheet from another site: the book must work
   offline.

Tests import :func:`build_book` and :func:`find_remote_assets` from this file.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

#: Where Sphinx picks up extra files (``html_extra_path`` in ``_config.yml``), relative to the book.
ASSETS_DIR = Path("_build") / "book-assets"
#: Where MathJax lands inside the assets folder, and so inside the HTML output.
MATHJAX_DIR = Path("_static") / "mathjax"
#: What ``tex-mml-chtml.js`` requests at run time, relative to ``node_modules/mathjax/es5`` (found
#: by watching a browser's requests): the combined file, the CHTML web fonts, the TeX extensions
#: it autoloads (``\boldsymbol``, ``\cancel``, ``\require{...}``), and the accessibility
#: components and speech-rule maps that its right-click menu loads (explorer, speech).
MATHJAX_PARTS = (
    "tex-mml-chtml.js",
    "output/chtml/fonts/woff-v2",
    "input/tex/extensions",
    "a11y",
    "sre",
)
#: Records which MathJax is staged; kept beside the assets folder so it is not published.
STAMP = Path("_build") / "book-assets.stamp"


def ensure_mathjax(repo_root: Path = REPO_ROOT) -> Path:
    """Return ``node_modules/mathjax/es5``, installing the npm packages first if it is missing."""
    es5 = repo_root / "node_modules" / "mathjax" / "es5"
    if (es5 / "tex-mml-chtml.js").is_file():
        return es5
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit(
            f"{es5} is missing and npm was not found: install Node.js (which provides npm), "
            "then run this script again."
        )
    command = "ci" if (repo_root / "package-lock.json").is_file() else "install"
    subprocess.run([npm, command, "--no-audit", "--no-fund"], cwd=repo_root, check=True)
    if not (es5 / "tex-mml-chtml.js").is_file():
        raise SystemExit(f"npm {command} finished but {es5 / 'tex-mml-chtml.js'} does not exist.")
    return es5


def stage_mathjax(book_root: Path = REPO_ROOT, repo_root: Path = REPO_ROOT) -> Path:
    """Copy MathJax into ``<book_root>/_build/book-assets/_static/mathjax`` and return that folder.

    A stamp file records the MathJax version copied, so an up-to-date copy is left alone.
    """
    es5 = ensure_mathjax(repo_root)
    version = json.loads((es5.parent / "package.json").read_text(encoding="utf-8"))["version"]
    stamp = f"mathjax {version}: {', '.join(MATHJAX_PARTS)}"
    target, stamp_file = book_root / ASSETS_DIR / MATHJAX_DIR, book_root / STAMP
    if target.is_dir() and stamp_file.is_file() and stamp_file.read_text("utf-8") == stamp:
        return target
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    for part in MATHJAX_PARTS:
        source, dest = es5 / part, staging / part
        dest.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, dest)
        else:
            shutil.copy2(source, dest)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    stamp_file.write_text(stamp, encoding="utf-8")
    return target


class _AssetCollector(HTMLParser):
    """Collect the URLs a page loads through ``<script src>`` and ``<link href>``."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script" and values.get("src"):
            self.urls.append(values["src"] or "")
        # rel="canonical" names the page's public address; the browser fetches nothing from it.
        elif tag == "link" and values.get("href") and values.get("rel") != "canonical":
            self.urls.append(values["href"] or "")


def is_remote(url: str) -> bool:
    """Whether ``url`` points at another site (``http:``, ``https:`` or ``//host/...``)."""
    lowered = url.strip().lower()
    return lowered.startswith(("http:", "https:", "//"))


def find_remote_assets(html_dir: Path) -> list[str]:
    """List ``"page: url"`` for every remote script or stylesheet a built page loads."""
    found: list[str] = []
    for page in sorted(html_dir.rglob("*.html")):
        collector = _AssetCollector()
        collector.feed(page.read_text(encoding="utf-8", errors="replace"))
        rel = page.relative_to(html_dir).as_posix()
        found += [f"{rel}: {url}" for url in collector.urls if is_remote(url)]
    return found


def build_book(
    book_root: Path = REPO_ROOT,
    *,
    repo_root: Path = REPO_ROOT,
    fresh: bool = False,
    builder: str = "html",
) -> Path:
    """Stage MathJax, build the book with warnings as errors and return the output folder.

    ``book_root`` holds ``_config.yml`` and ``_toc.yml`` (a copy of the book elsewhere works
    too); ``repo_root`` holds ``package.json`` and ``node_modules``. Raises ``RuntimeError`` when
    the build fails or a built page loads anything from another site.
    """
    book_root = book_root.resolve()
    stage_mathjax(book_root, repo_root)
    command = [
        sys.executable,
        "-c",
        "from jupyter_book.cli.main import main; main(prog_name='jupyter-book')",
        "build",
        str(book_root),
        "-W",
        "-n",
        "--keep-going",
        "--builder",
        builder,
    ]
    if fresh:
        command.append("--all")
    result = subprocess.run(command, cwd=book_root, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"jupyter-book build failed (exit code {result.returncode}); see above.")
    html_dir = book_root / "_build" / builder
    remote = find_remote_assets(html_dir)
    if remote:
        raise RuntimeError(
            "The book must work offline, but these pages load files from other sites:\n  "
            + "\n  ".join(remote)
        )
    return html_dir


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--all", action="store_true", help="rebuild every page, not just changes")
    parser.add_argument(
        "--builder", default="html", choices=("html", "dirhtml"), help="Sphinx builder"
    )
    args = parser.parse_args(argv)
    try:
        html_dir = build_book(fresh=args.all, builder=args.builder)
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"The book is in {html_dir}; open {html_dir / 'index.html'} in a browser.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
