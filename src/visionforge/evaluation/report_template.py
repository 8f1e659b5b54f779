"""The Jinja2 template of ``report.html`` (kept in a module so it ships with the package)."""

REPORT_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{ title }}</title>
<style>
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1100px; color: #222; line-height: 1.4; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: .6em 0; font-size: 90%; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f0f0f0; } td.key, th.key { text-align: left; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 85%; color: #555; }
pre { background: #f7f7f7; padding: .6em; overflow-x: auto; font-size: 85%; }
.muted { color: #777; }
.warn { background: #fdecea; border: 2px solid #c62828; color: #8e0000; padding: .6em 1em;
        margin: 1em 0; font-weight: 600; }
.verdict { font-size: 115%; margin: .6em 0; }
.cards { display: flex; flex-wrap: wrap; gap: .8em; margin: .8em 0; }
.card { border: 1px solid #ccc; border-radius: 6px; padding: .5em 1em; min-width: 8em; background: #fafafa; }
.card .v { font-size: 170%; font-weight: 600; } .card .k { color: #555; font-size: 85%; }
details { margin: .6em 0; } summary { cursor: pointer; font-weight: 600; }
</style>
</head>
<body>
<h1>{{ title }}</h1>
<p class="muted">generated {{ generated }}{% if run_dir %} from <code>{{ run_dir }}</code>{% endif %}</p>

{% macro kv_table(rows) -%}
<table>{% for k, v in rows %}<tr><td class="key">{{ k }}</td><td>{{ v }}</td></tr>{% endfor %}</table>
{%- endmacro %}
{% macro figures(items) -%}
{% for fig in items %}<figure><img src="data:image/png;base64,{{ fig.data }}" alt="{{ fig.name }}">
<figcaption>{{ fig.name }}</figcaption></figure>{% endfor %}
{%- endmacro %}

{% if warnings %}<div class="warn" id="warnings" role="alert"><div>Warning</div><ul>
{% for w in warnings %}<li>{{ w }}</li>{% endfor %}</ul></div>{% endif %}

{% if verdict or headline %}<section id="summary"><h2>Summary</h2>
{% if verdict %}<p class="verdict">{{ verdict }}</p>{% endif %}
{% if headline %}<div class="cards">{% for k, v in headline %}<div class="card"><div class="v">{{ v }}</div><div class="k">{{ k }}</div></div>{% endfor %}</div>
{% endif %}
</section>{% endif %}

{% if training_figures %}<section id="training-curves"><h2>Training curves</h2>
{{ figures(training_figures) }}
</section>{% endif %}

{% if confusion_figures %}<section id="confusion-matrix"><h2>Confusion matrix and ROC</h2>
{{ figures(confusion_figures) }}
</section>{% endif %}

{% if metric_blocks or metric_figures %}<section id="metrics"><h2>Metrics</h2>
{% for block in metric_blocks %}
<h3>{{ block.title }}</h3>
{% if block.per_class %}<table><tr><th class="key">class</th>{% for c in block.per_class.columns %}<th>{{ c }}</th>{% endfor %}</tr>
{% for row in block.per_class.rows %}<tr><td class="key">{{ row[0] }}</td>{% for v in row[1:] %}<td>{{ v }}</td>{% endfor %}</tr>{% endfor %}</table>{% endif %}
{% if block.scalars %}{{ kv_table(block.scalars) }}{% endif %}
{% if block.sweep %}<table><tr>{% for c in block.sweep.columns %}<th>{{ c }}</th>{% endfor %}</tr>
{% for row in block.sweep.rows %}<tr>{% for v in row %}<td>{{ v }}</td>{% endfor %}</tr>{% endfor %}</table>{% endif %}
{% endfor %}
{{ figures(metric_figures) }}
</section>{% endif %}

{% if sample_figures %}<section id="sample-predictions"><h2>Sample predictions</h2>
{{ figures(sample_figures) }}
</section>{% endif %}

{% if explanation_figures or explanation_notes %}
<section id="explanations"><h2>Explanations</h2>
{% if explanation_notes %}<ul>{% for note in explanation_notes %}<li>{{ note }}</li>{% endfor %}</ul>{% endif %}
{{ figures(explanation_figures) }}
</section>
{% endif %}

{% if dataset_rows %}<section id="dataset"><h2>Dataset</h2>
{{ kv_table(dataset_rows) }}
</section>{% endif %}

{% if runtime_rows %}<section id="runtimes"><h2>Runtimes</h2>
{{ kv_table(runtime_rows) }}
</section>{% endif %}

{% if config_rows or config_text %}<section id="config"><h2>Configuration</h2>
<details><summary>resolved configuration ({{ config_rows|length if config_rows else "text" }}{% if config_rows %} keys{% endif %})</summary>
{% if config_rows %}{{ kv_table(config_rows) }}{% else %}<pre>{{ config_text }}</pre>{% endif %}
</details>
</section>{% endif %}

<section id="versions"><h2>Library versions</h2>
<details><summary>versions</summary>
{{ kv_table(version_rows) }}
</details>
</section>
</body>
</html>
"""
