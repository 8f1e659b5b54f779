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

<section id="config"><h2>Configuration</h2>
{% if config_rows %}{{ kv_table(config_rows) }}{% elif config_text %}<pre>{{ config_text }}</pre>
{% else %}<p class="muted">no configuration recorded</p>{% endif %}
</section>

<section id="dataset"><h2>Dataset</h2>
{% if dataset_rows %}{{ kv_table(dataset_rows) }}{% else %}<p class="muted">no dataset summary recorded</p>{% endif %}
</section>

<section id="training-curves"><h2>Training curves</h2>
{% if training_figures %}{{ figures(training_figures) }}{% else %}<p class="muted">no training history</p>{% endif %}
</section>

<section id="metrics"><h2>Metrics</h2>
{% for block in metric_blocks %}
<h3>{{ block.title }}</h3>
{% if block.scalars %}{{ kv_table(block.scalars) }}{% endif %}
{% if block.per_class %}<table><tr><th class="key">class</th>{% for c in block.per_class.columns %}<th>{{ c }}</th>{% endfor %}</tr>
{% for row in block.per_class.rows %}<tr><td class="key">{{ row[0] }}</td>{% for v in row[1:] %}<td>{{ v }}</td>{% endfor %}</tr>{% endfor %}</table>{% endif %}
{% if block.sweep %}<table><tr>{% for c in block.sweep.columns %}<th>{{ c }}</th>{% endfor %}</tr>
{% for row in block.sweep.rows %}<tr>{% for v in row %}<td>{{ v }}</td>{% endfor %}</tr>{% endfor %}</table>{% endif %}
{% else %}<p class="muted">no metrics recorded</p>{% endfor %}
{{ figures(metric_figures) }}
</section>

<section id="confusion-matrix"><h2>Confusion matrix</h2>
{% if confusion_figures %}{{ figures(confusion_figures) }}{% else %}<p class="muted">not available</p>{% endif %}
</section>

<section id="sample-predictions"><h2>Sample predictions</h2>
{% if sample_figures %}{{ figures(sample_figures) }}{% else %}<p class="muted">not available</p>{% endif %}
</section>

{% if explanation_figures or explanation_notes %}
<section id="explanations"><h2>Explanations</h2>
{% for note in explanation_notes %}<p>{{ note }}</p>{% endfor %}
{{ figures(explanation_figures) }}
</section>
{% endif %}

<section id="runtimes"><h2>Runtimes</h2>
{% if runtime_rows %}{{ kv_table(runtime_rows) }}{% else %}<p class="muted">no runtimes recorded</p>{% endif %}
</section>

<section id="versions"><h2>Library versions</h2>
{{ kv_table(version_rows) }}
</section>
</body>
</html>
"""
