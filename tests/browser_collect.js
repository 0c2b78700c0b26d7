// Collects, in the browser, the facts tests/browser.py checks about a built book page.
// Run by Playwright's page.evaluate once the page has loaded; returns plain JSON.
async () => {
  // Images: load lazy ones too, and wait (at most 10 s) until each has loaded or failed.
  const images = [...document.images];
  await Promise.all(images.map((img) => {
    if (img.loading === "lazy") img.loading = "eager";
    if (img.complete) return null;
    return new Promise((done) => {
      img.addEventListener("load", done, { once: true });
      img.addEventListener("error", done, { once: true });
      setTimeout(done, 10000);
    });
  }));
  // Maths: MathJax 3 typesets once at start-up; wait for that, and for its fonts, at most 20 s
  // each (what is still untypeset then is reported).
  const atMost = (promise) => Promise.race([promise, new Promise((done) => setTimeout(done, 20000))]);
  let mathjaxFailure = null;
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    try { await atMost(MathJax.startup.promise); } catch (error) { mathjaxFailure = String(error); }
  }
  await atMost(document.fonts.ready);

  const text = (element) => {
    const copy = element.cloneNode(true);
    copy.querySelectorAll(".headerlink").forEach((x) => x.remove());
    return copy.textContent.replace(/\s+/g, " ").trim();
  };
  const article = document.querySelector("article.bd-article") || document.body;
  // The article's text outside code, typeset maths and scripts: where raw TeX must not be.
  const prose = article.cloneNode(true);
  prose.querySelectorAll(
    "pre, code, script, style, textarea, kbd, mjx-container, .math, .highlight, .headerlink")
    .forEach((x) => x.remove());
  const mathElements = [...article.querySelectorAll(".math")];
  const errors = [...document.querySelectorAll("mjx-merror")].map(
    (e) => (e.getAttribute("data-mjx-error") || e.textContent).slice(0, 120));
  if (mathjaxFailure) errors.push(mathjaxFailure);
  const wideInputs = [...article.querySelectorAll("div.cell_input pre")]
    .filter((pre) => pre.scrollWidth > pre.clientWidth + 1)
    .map((pre) => {
      const longest = pre.textContent.split("\n").reduce((a, b) => (b.length > a.length ? b : a), "");
      return [pre.scrollWidth - pre.clientWidth, longest.trim().slice(0, 100)];
    });

  return {
    title: document.title,
    h1: [...article.querySelectorAll("h1")].map(text),
    nav: [...document.querySelectorAll(".bd-sidebar-primary a.reference.internal")].map((a) => ({
      href: a.href,
      text: text(a),
      current: a.classList.contains("current") || !!a.closest("li.current"),
    })),
    page_toc: [...document.querySelectorAll(
      "#pst-page-toc-nav li.toc-h2 > a, #pst-page-toc-nav li.toc-h3 > a")].map((a) => ({
      level: a.parentElement.classList.contains("toc-h2") ? 2 : 3,
      text: text(a),
    })),
    links: [...document.querySelectorAll("a[href]")].map((a) => ({
      href: a.href, raw: a.getAttribute("href"), text: text(a).slice(0, 60),
    })),
    ids: [...document.querySelectorAll("[id]")].map((e) => e.id)
      .concat([...document.querySelectorAll("a[name]")].map((a) => a.name)),
    images: images.map((img) => ({
      src: img.getAttribute("src"),
      alt: img.getAttribute("alt"),
      loaded: img.complete && img.naturalWidth > 0,
    })),
    math: {
      count: mathElements.length,
      mathjax: !!window.MathJax,
      unrendered: mathElements.filter((m) => !m.querySelector("mjx-container"))
        .map((m) => m.textContent.trim().slice(0, 80)),
      errors: errors,
      prose: prose.textContent.replace(/[ \t]+/g, " "),
    },
    outputs: {
      cells: article.querySelectorAll("div.cell div.cell_output").length,
      images: article.querySelectorAll("div.cell_output img").length,
      tables: article.querySelectorAll("div.cell_output table").length,
    },
    launch: [...document.querySelectorAll(".dropdown-launch-buttons a[href]")].map((a) => a.href),
    repository: [...document.querySelectorAll("a.btn-source-repository-button")].map((a) => a.href),
    layout: {
      wide_inputs: wideInputs,
      page_width: document.documentElement.scrollWidth,
      window_width: window.innerWidth,
      search_fields: [...document.querySelectorAll(".search-button-field")]
        .filter((e) => e.offsetParent !== null).length,
    },
  };
}
