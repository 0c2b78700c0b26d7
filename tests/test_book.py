"""The Jupyter Book builds with warnings as errors, serves MathJax itself and loads nothing remote.

The book is built once per session (the ``html_dir`` fixture of ``tests/book_build.py``, shared
with the browser tests) from a copy of its sources in a temporary folder, so the test never touches
the working tree's ``_build/`` and never sees a stale page. The copy gets one extra page, a
notebook with saved ipywidgets state and a progress-bar widget output, because such outputs are
what make myst-nb pull require.js and the widget manager from a CDN.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlparse

import yaml
from book_build import PROGRESS_TEXT, REPO_ROOT, WIDGET_PAGE, WIDGET_VIEW, build_tool

CHAPTER = "notebooks/01_motivation"


def _page(html_dir: Path, docname: str) -> str:
    return (html_dir / f"{docname}.html").read_text(encoding="utf-8")


def test_the_pages_exist(html_dir: Path) -> None:
    for docname in ("index", "book/intro", "book/setup", CHAPTER):
        assert (html_dir / f"{docname}.html").is_file(), f"{docname}.html was not built"
    assert "book/intro.html" in _page(html_dir, "index"), "index.html must lead to the intro"
    assert "<h1>Setting up" in _page(html_dir, "book/setup")


def test_mathjax_is_served_from_the_book(html_dir: Path) -> None:
    mathjax = html_dir / "_static" / "mathjax"
    assert (mathjax / "tex-mml-chtml.js").is_file()
    assert list((mathjax / "output" / "chtml" / "fonts" / "woff-v2").glob("*.woff"))
    assert (mathjax / "input" / "tex" / "extensions" / "boldsymbol.js").is_file()
    # Sphinx adds MathJax to the pages that have maths; the intro page has some.
    intro = _page(html_dir, "book/intro")
    assert "\\left\\lfloor" in intro
    assert 'src="../_static/mathjax/tex-mml-chtml.js' in intro


def test_no_page_loads_anything_remote(html_dir: Path) -> None:
    assert build_tool.find_remote_assets(html_dir) == []
    # Nor does an inline script hold a CDN address to load later (as sphinx-thebe's loader does).
    for page in html_dir.rglob("*.html"):
        scripts = re.findall(
            r"<script\b[^>]*>(.*?)</script>", page.read_text(encoding="utf-8"), re.DOTALL
        )
        for host in ("unpkg.com", "cdnjs.cloudflare.com", "cdn.jsdelivr.net"):
            assert not any(host in body for body in scripts), f"{page.name}: {host}"


def test_the_remote_asset_check_catches_a_cdn(tmp_path: Path) -> None:
    (tmp_path / "ok.html").write_text(
        '<script src="_static/a.js"></script><link rel="stylesheet" href="../b.css">'
        '<link rel="canonical" href="https://example.org/ok.html">',
        encoding="utf-8",
    )
    (tmp_path / "bad.html").write_text(
        '<script src="https://cdn.jsdelivr.net/npm/x.js"></script>'
        "<link rel='stylesheet' href='//fonts.example.com/f.css'>",
        encoding="utf-8",
    )
    assert build_tool.find_remote_assets(tmp_path) == [
        "bad.html: https://cdn.jsdelivr.net/npm/x.js",
        "bad.html: //fonts.example.com/f.css",
    ]


def test_widget_outputs_render_as_text_without_widget_scripts(html_dir: Path) -> None:
    page = _page(html_dir, WIDGET_PAGE)
    # The progress bar shows as its text fallback, not as an empty widget view ...
    assert PROGRESS_TEXT.replace("<", "&lt;").replace(">", "&gt;") in page
    assert WIDGET_VIEW not in page
    # ... and the page loads neither require.js nor the widget manager (myst-nb's default
    # nb_ipywidgets_js). The saved state stays as an inert JSON <script type=...> block.
    assert "require.js" not in page and "require.min.js" not in page and "embed-amd" not in page


def test_colab_link_comes_from_the_config(html_dir: Path) -> None:
    config = yaml.safe_load((REPO_ROOT / "_config.yml").read_text(encoding="utf-8"))
    repo = config["repository"]
    owner_and_name = urlparse(repo["url"]).path.strip("/").removesuffix(".git")
    book_path = str(repo.get("path_to_book") or "").strip("/")
    notebook = "/".join(part for part in (book_path, f"{CHAPTER}.ipynb") if part not in ("", "."))
    colab = config["launch_buttons"]["colab_url"].rstrip("/")
    expected = f"{colab}/github/{owner_and_name}/blob/{repo['branch']}/{notebook}"
    assert f'href="{expected}"' in _page(html_dir, CHAPTER)
    assert f'href="{repo["url"]}"' in _page(html_dir, "book/intro"), "repository button missing"


def test_the_package_lock_pins_mathjax_3() -> None:
    package = json.loads((REPO_ROOT / "package.json").read_text(encoding="utf-8"))
    lock = json.loads((REPO_ROOT / "package-lock.json").read_text(encoding="utf-8"))
    pinned = package["dependencies"]["mathjax"]
    assert pinned.split(".")[0] == "3" and pinned.replace(".", "").isdigit(), pinned
    assert lock["packages"]["node_modules/mathjax"]["version"] == pinned
