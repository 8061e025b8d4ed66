"""A chart's table view, built in Python: a year of days is thousands of cells, which a template
loop (or format_html per cell) renders many times slower than plain joins over escaped text."""

from html import escape

from django import template
from django.utils.safestring import SafeString, mark_safe

from reports.selectors import Chart

register = template.Library()


@register.simple_tag
def chart_table(chart: Chart) -> SafeString:
    head = "".join(
        f'<th scope="col"{" class=text-end" if index else ""}>{escape(str(name))}</th>'
        for index, name in enumerate(chart.header)
    )
    body = "".join(
        f'<tr><th scope="row" class="fw-normal text-break">{escape(str(row[0]))}</th>'
        + "".join(f'<td class="text-end">{escape(str(cell))}</td>' for cell in row[1:])
        + "</tr>"
        for row in chart.rows()
    )
    # Every value above is escaped: the labels are URLs and names people typed.
    return mark_safe(
        '<table class="table table-sm table-striped small mb-0">'
        f'<thead class="sticky-top"><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    )
