/** A self-contained HTML page listing the API from its OpenAPI document (no external assets: the appliance may have no Internet). */

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

export function docsPage(doc: Record<string, unknown>): string {
  const paths = doc.paths as Record<string, Record<string, { summary: string; tags: string[]; requestBody?: unknown; parameters: Array<{ name: string; in: string }> }>>;
  const rows: string[] = [];
  for (const [path, ops] of Object.entries(paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const params = op.parameters.filter((p) => p.in === 'query').map((p) => p.name).join(', ');
      rows.push(`<tr><td><code>${method.toUpperCase()}</code></td><td><code>${esc(path)}</code></td><td>${esc(op.summary)}${params ? `<br><small>query: ${esc(params)}</small>` : ''}</td></tr>`);
    }
  }
  return `<!doctype html><html><head><meta charset="utf-8"><title>Sidereal API</title>
<style>body{font-family:sans-serif;max-width:60rem;margin:2rem auto}td{padding:.3rem .6rem;vertical-align:top;border-bottom:1px solid #ddd}</style></head>
<body><h1>Sidereal admin API</h1>
<p>Send <code>Authorization: Bearer &lt;token&gt;</code> (make one with <code>sidereal token create --name NAME --role admin|read</code>).
Errors are <code>{ "error", "field", "message" }</code>. The machine-readable description is <a href="/api/v1/openapi.json">openapi.json</a>.</p>
<table>${rows.join('\n')}</table></body></html>\n`;
}
