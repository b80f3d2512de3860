
/*
 * Line and bar charts as inline SVG (ngx_http_learn_svg.h).
 */


#include "ngx_http_learn.h"
#include "ngx_http_learn_svg.h"

#include <math.h>


#define NGX_HTTP_LEARN_SVG_WIDTH     720
#define NGX_HTTP_LEARN_SVG_HEIGHT    300

/* the plot's margins: tick labels left, title and legend above */
#define NGX_HTTP_LEARN_SVG_LEFT      70
#define NGX_HTTP_LEARN_SVG_RIGHT     20
#define NGX_HTTP_LEARN_SVG_TOP       44
#define NGX_HTTP_LEARN_SVG_BOTTOM    44

#define NGX_HTTP_LEARN_SVG_TICKS     12


typedef struct {
    double                         lo;        /* plotted range (log10 of */
    double                         hi;        /* the values on a log axis) */
    double                         px0;       /* pixels of lo and hi */
    double                         px1;
    ngx_uint_t                     log;
} ngx_http_learn_svg_axis_t;


typedef struct {
    double                         min;       /* the finite data's extent */
    double                         max;
    ngx_uint_t                     n;
} ngx_http_learn_svg_extent_t;


static const char  *ngx_http_learn_svg_colors[NGX_HTTP_LEARN_SVG_MAX_SERIES]
    = { "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
        "#e377c2", "#17becf" };


static ngx_uint_t ngx_http_learn_svg_finite(double v, ngx_uint_t log);
static void ngx_http_learn_svg_extent(ngx_http_learn_svg_extent_t *e,
    double v);
static void ngx_http_learn_svg_range(ngx_http_learn_svg_axis_t *a,
    ngx_http_learn_svg_extent_t *e, ngx_uint_t pad);
static double ngx_http_learn_svg_map(ngx_http_learn_svg_axis_t *a, double v);
static ngx_uint_t ngx_http_learn_svg_ticks(ngx_http_learn_svg_axis_t *a,
    double *out);
static void ngx_http_learn_svg_open(ngx_http_learn_html_t *h,
    const ngx_http_learn_svg_chart_t *chart, const char *kind,
    ngx_uint_t width, ngx_uint_t height, ngx_http_learn_svg_extent_t *ex,
    ngx_http_learn_svg_extent_t *ey);
static void ngx_http_learn_svg_legend(ngx_http_learn_html_t *h,
    const ngx_http_learn_svg_series_t *series, ngx_uint_t nseries,
    ngx_uint_t width);
static void ngx_http_learn_svg_y_axis(ngx_http_learn_html_t *h,
    ngx_http_learn_svg_axis_t *ay, ngx_uint_t width);
static void ngx_http_learn_svg_labels(ngx_http_learn_html_t *h,
    const ngx_http_learn_svg_chart_t *chart, ngx_uint_t width,
    ngx_uint_t height);
static void ngx_http_learn_svg_empty(ngx_http_learn_html_t *h,
    ngx_uint_t width, ngx_uint_t height);


ngx_int_t
ngx_http_learn_svg_lines(ngx_http_learn_html_t *h,
    const ngx_http_learn_svg_chart_t *chart,
    const ngx_http_learn_svg_series_t *series, ngx_uint_t nseries)
{
    double                        x, y, ticks[NGX_HTTP_LEARN_SVG_TICKS],
                                  ymin, ymax;
    ngx_uint_t                    i, k, n, width, height, log, open, drawn;
    ngx_http_learn_svg_axis_t     ax, ay;
    ngx_http_learn_svg_extent_t   ex, ey;

    if (nseries > NGX_HTTP_LEARN_SVG_MAX_SERIES) {
        return NGX_ERROR;
    }

    width = chart->width ? chart->width : NGX_HTTP_LEARN_SVG_WIDTH;
    height = chart->height ? chart->height : NGX_HTTP_LEARN_SVG_HEIGHT;

    /* the scale: AUTO looks at every finite y first */

    log = (chart->y_scale == NGX_HTTP_LEARN_SVG_LOG);

    if (chart->y_scale == NGX_HTTP_LEARN_SVG_AUTO) {
        ymin = INFINITY;
        ymax = -INFINITY;

        for (k = 0; k < nseries; k++) {
            for (i = 0; i < series[k].n; i++) {
                y = series[k].y[i];

                if (isfinite(y)) {
                    ymin = ngx_min(ymin, y);
                    ymax = ngx_max(ymax, y);
                }
            }
        }

        log = (ymin > 0 && isfinite(ymax) && ymax >= 100 * ymin);
    }

    ngx_memzero(&ex, sizeof(ex));
    ngx_memzero(&ey, sizeof(ey));

    for (k = 0; k < nseries; k++) {
        for (i = 0; i < series[k].n; i++) {
            x = series[k].x ? series[k].x[i] : (double) i;
            y = series[k].y[i];

            if (ngx_http_learn_svg_finite(x, 0)
                && ngx_http_learn_svg_finite(y, log))
            {
                ngx_http_learn_svg_extent(&ex, x);
                ngx_http_learn_svg_extent(&ey, y);
            }
        }
    }

    ngx_http_learn_svg_open(h, chart, "lines", width, height, &ex, &ey);
    ngx_http_learn_html_printf(h, " data-y-scale=\"%s\">",
                               log ? "log" : "linear");
    ngx_http_learn_html_literal(h, "<title>");
    ngx_http_learn_html_str(h, &chart->title);
    ngx_http_learn_html_literal(h, "</title>");

    ngx_http_learn_svg_labels(h, chart, width, height);
    ngx_http_learn_svg_legend(h, series, nseries, width);

    if (ey.n == 0) {
        ngx_http_learn_svg_empty(h, width, height);
        ngx_http_learn_html_literal(h, "</svg>\n");
        return NGX_OK;
    }

    ax.px0 = NGX_HTTP_LEARN_SVG_LEFT;
    ax.px1 = width - NGX_HTTP_LEARN_SVG_RIGHT;
    ax.log = 0;
    ngx_http_learn_svg_range(&ax, &ex, 0);

    ay.px0 = height - NGX_HTTP_LEARN_SVG_BOTTOM;
    ay.px1 = NGX_HTTP_LEARN_SVG_TOP;
    ay.log = log;
    ngx_http_learn_svg_range(&ay, &ey, 1);

    /* x ticks, with vertical grid lines */

    n = ngx_http_learn_svg_ticks(&ax, ticks);

    ngx_http_learn_html_literal(h, "<g class=\"axis x\">");

    for (i = 0; i < n; i++) {
        x = ngx_http_learn_svg_map(&ax, ticks[i]);

        ngx_http_learn_html_printf(h, "<line x1=\"%.1f\" x2=\"%.1f\" "
                                   "y1=\"%d\" y2=\"%ui\" stroke=\"#eee\"/>"
                                   "<text x=\"%.1f\" y=\"%ui\" "
                                   "text-anchor=\"middle\">",
                                   x, x, NGX_HTTP_LEARN_SVG_TOP,
                                   height - NGX_HTTP_LEARN_SVG_BOTTOM, x,
                                   height - NGX_HTTP_LEARN_SVG_BOTTOM + 14);
        ngx_http_learn_html_number(h, ticks[i], 4);
        ngx_http_learn_html_literal(h, "</text>");
    }

    ngx_http_learn_html_literal(h, "</g>");

    ngx_http_learn_svg_y_axis(h, &ay, width);

    /* the series: polylines through runs of finite points, then points */

    for (k = 0; k < nseries; k++) {
        drawn = 0;

        for (i = 0; i < series[k].n; i++) {
            x = series[k].x ? series[k].x[i] : (double) i;
            drawn += ngx_http_learn_svg_finite(x, 0)
                     && ngx_http_learn_svg_finite(series[k].y[i], log);
        }

        ngx_http_learn_html_printf(h, "<g class=\"series\" data-series=\"%ui\""
                                   " data-points=\"%ui\" data-name=\"",
                                   k, drawn);
        ngx_http_learn_html_str(h, &series[k].name);
        ngx_http_learn_html_printf(h, "\" stroke=\"%s\" fill=\"%s\">",
                                   ngx_http_learn_svg_colors[k],
                                   ngx_http_learn_svg_colors[k]);

        open = 0;

        for (i = 0; i < series[k].n; i++) {
            x = series[k].x ? series[k].x[i] : (double) i;
            y = series[k].y[i];

            if (!ngx_http_learn_svg_finite(x, 0)
                || !ngx_http_learn_svg_finite(y, log))
            {
                if (open) {
                    ngx_http_learn_html_literal(h, "\"/>");
                    open = 0;
                }

                continue;
            }

            if (!open) {
                ngx_http_learn_html_literal(h, "<polyline fill=\"none\" "
                                            "stroke-width=\"1.5\" points=\"");
                open = 1;
            }

            ngx_http_learn_html_printf(h, "%.1f,%.1f ",
                                       ngx_http_learn_svg_map(&ax, x),
                                       ngx_http_learn_svg_map(&ay, y));
        }

        if (open) {
            ngx_http_learn_html_literal(h, "\"/>");
        }

        for (i = 0; i < series[k].n; i++) {
            x = series[k].x ? series[k].x[i] : (double) i;
            y = series[k].y[i];

            if (!ngx_http_learn_svg_finite(x, 0)
                || !ngx_http_learn_svg_finite(y, log))
            {
                continue;
            }

            ngx_http_learn_html_literal(h, "<circle class=\"pt\" data-x=\"");
            ngx_http_learn_html_value(h, x);
            ngx_http_learn_html_literal(h, "\" data-y=\"");
            ngx_http_learn_html_value(h, y);
            ngx_http_learn_html_printf(h, "\" cx=\"%.1f\" cy=\"%.1f\" "
                                       "r=\"2\"/>",
                                       ngx_http_learn_svg_map(&ax, x),
                                       ngx_http_learn_svg_map(&ay, y));
        }

        ngx_http_learn_html_literal(h, "</g>");
    }

    ngx_http_learn_html_literal(h, "</svg>\n");

    return NGX_OK;
}


ngx_int_t
ngx_http_learn_svg_bars(ngx_http_learn_html_t *h,
    const ngx_http_learn_svg_chart_t *chart, const ngx_str_t *labels,
    ngx_uint_t nlabels, const ngx_http_learn_svg_series_t *series,
    ngx_uint_t nseries)
{
    double                        y, group, bar, x0, top, base;
    ngx_uint_t                    i, k, width, height;
    ngx_http_learn_svg_axis_t     ay;
    ngx_http_learn_svg_extent_t   ex, ey;

    if (nseries > NGX_HTTP_LEARN_SVG_MAX_SERIES) {
        return NGX_ERROR;
    }

    width = chart->width ? chart->width : NGX_HTTP_LEARN_SVG_WIDTH;
    height = chart->height ? chart->height : NGX_HTTP_LEARN_SVG_HEIGHT;

    ngx_memzero(&ex, sizeof(ex));
    ngx_memzero(&ey, sizeof(ey));

    for (k = 0; k < nseries; k++) {
        for (i = 0; i < nlabels && i < series[k].n; i++) {
            if (isfinite(series[k].y[i])) {
                ngx_http_learn_svg_extent(&ey, series[k].y[i]);
            }
        }
    }

    ngx_http_learn_svg_open(h, chart, "bars", width, height, &ex, &ey);

    /* bars stand on 0, and all zeros still get an axis */
    ey.min = ngx_min(ey.min, 0.0);
    ey.max = ngx_max(ey.max, 0.0);

    if (ey.min == 0 && ey.max == 0) {
        ey.max = 1;
    }
    ngx_http_learn_html_literal(h, "><title>");
    ngx_http_learn_html_str(h, &chart->title);
    ngx_http_learn_html_literal(h, "</title>");

    ngx_http_learn_svg_labels(h, chart, width, height);
    ngx_http_learn_svg_legend(h, series, nseries, width);

    if (ey.n == 0 || nlabels == 0) {
        ngx_http_learn_svg_empty(h, width, height);
        ngx_http_learn_html_literal(h, "</svg>\n");
        return NGX_OK;
    }

    ay.px0 = height - NGX_HTTP_LEARN_SVG_BOTTOM;
    ay.px1 = NGX_HTTP_LEARN_SVG_TOP;
    ay.log = 0;
    ngx_http_learn_svg_range(&ay, &ey, 1);

    /* headroom above, none below 0 */
    if (ey.min >= 0) {
        ay.lo = 0;
    }

    ngx_http_learn_svg_y_axis(h, &ay, width);

    group = (double) (width - NGX_HTTP_LEARN_SVG_LEFT
                      - NGX_HTTP_LEARN_SVG_RIGHT) / nlabels;
    bar = group * 0.8 / ngx_max(nseries, 1);
    base = ngx_http_learn_svg_map(&ay, ngx_max(ay.lo, 0.0));

    ngx_http_learn_html_literal(h, "<g class=\"axis x\">");

    for (i = 0; i < nlabels; i++) {
        ngx_http_learn_html_printf(h, "<text x=\"%.1f\" y=\"%ui\" "
                                   "text-anchor=\"middle\">",
                                   NGX_HTTP_LEARN_SVG_LEFT + group * (i + 0.5),
                                   height - NGX_HTTP_LEARN_SVG_BOTTOM + 14);
        ngx_http_learn_html_str(h, &labels[i]);
        ngx_http_learn_html_literal(h, "</text>");
    }

    ngx_http_learn_html_literal(h, "</g>");

    for (k = 0; k < nseries; k++) {
        ngx_http_learn_html_printf(h, "<g class=\"series\" data-series=\"%ui\""
                                   " data-name=\"", k);
        ngx_http_learn_html_str(h, &series[k].name);
        ngx_http_learn_html_printf(h, "\" fill=\"%s\">",
                                   ngx_http_learn_svg_colors[k]);

        for (i = 0; i < nlabels && i < series[k].n; i++) {
            y = series[k].y[i];

            if (!isfinite(y)) {
                continue;
            }

            x0 = NGX_HTTP_LEARN_SVG_LEFT + group * i + group * 0.1 + bar * k;
            top = ngx_http_learn_svg_map(&ay, y);

            ngx_http_learn_html_literal(h, "<rect class=\"bar\" data-label=\"");
            ngx_http_learn_html_str(h, &labels[i]);
            ngx_http_learn_html_literal(h, "\" data-y=\"");
            ngx_http_learn_html_value(h, y);
            ngx_http_learn_html_printf(h, "\" x=\"%.1f\" y=\"%.1f\" "
                                       "width=\"%.1f\" height=\"%.1f\"/>",
                                       x0, ngx_min(top, base), bar,
                                       fabs(base - top));
        }

        ngx_http_learn_html_literal(h, "</g>");
    }

    ngx_http_learn_html_literal(h, "</svg>\n");

    return NGX_OK;
}


static ngx_uint_t
ngx_http_learn_svg_finite(double v, ngx_uint_t log)
{
    return isfinite(v) && (!log || v > 0);
}


static void
ngx_http_learn_svg_extent(ngx_http_learn_svg_extent_t *e, double v)
{
    if (e->n == 0) {
        e->min = v;
        e->max = v;

    } else {
        e->min = ngx_min(e->min, v);
        e->max = ngx_max(e->max, v);
    }

    e->n++;
}


/* the plotted range: the data's, widened when it is a single value */

static void
ngx_http_learn_svg_range(ngx_http_learn_svg_axis_t *a,
    ngx_http_learn_svg_extent_t *e, ngx_uint_t pad)
{
    double  span;

    a->lo = a->log ? log10(e->min) : e->min;
    a->hi = a->log ? log10(e->max) : e->max;

    span = a->hi - a->lo;

    if (!(span > 0)) {
        span = a->log ? 1 : ngx_max(fabs(a->lo) * 0.2, 1e-6);
        a->lo -= span / 2;
        a->hi += span / 2;
        return;
    }

    if (pad) {
        a->lo -= span * 0.05;
        a->hi += span * 0.05;
    }
}


static double
ngx_http_learn_svg_map(ngx_http_learn_svg_axis_t *a, double v)
{
    if (a->log) {
        v = log10(v);
    }

    return a->px0 + (v - a->lo) / (a->hi - a->lo) * (a->px1 - a->px0);
}


/*
 * About five ticks at 1, 2 or 5 times a power of ten, inside the range;
 * on a log axis, whole powers of ten when it spans more than one.
 * Returns them in the values' units (10^t on a log axis).
 */

static ngx_uint_t
ngx_http_learn_svg_ticks(ngx_http_learn_svg_axis_t *a, double *out)
{
    double      raw, mag, norm, step, t;
    ngx_uint_t  n;

    raw = (a->hi - a->lo) / 5;
    mag = pow(10, floor(log10(raw)));
    norm = raw / mag;

    step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;

    if (a->log && a->hi - a->lo >= 1) {
        step = ngx_max(step, 1);
        step = ceil(step);
    }

    n = 0;

    for (t = ceil(a->lo / step) * step;
         t <= a->hi + step * 1e-9 && n < NGX_HTTP_LEARN_SVG_TICKS;
         t += step)
    {
        if (fabs(t) < step * 1e-9) {
            t = 0;
        }

        out[n++] = a->log ? pow(10, t) : t;
    }

    return n;
}


static void
ngx_http_learn_svg_open(ngx_http_learn_html_t *h,
    const ngx_http_learn_svg_chart_t *chart, const char *kind,
    ngx_uint_t width, ngx_uint_t height, ngx_http_learn_svg_extent_t *ex,
    ngx_http_learn_svg_extent_t *ey)
{
    ngx_http_learn_html_printf(h, "<svg xmlns=\"http://www.w3.org/2000/svg\" "
                               "class=\"learn-chart\" data-chart=\"%s\" "
                               "width=\"%ui\" height=\"%ui\" "
                               "viewBox=\"0 0 %ui %ui\" role=\"img\" "
                               "data-title=\"",
                               kind, width, height, width, height);
    ngx_http_learn_html_str(h, &chart->title);
    ngx_http_learn_html_literal(h, "\"");

    if (ex->n) {
        ngx_http_learn_html_literal(h, " data-x-min=\"");
        ngx_http_learn_html_value(h, ex->min);
        ngx_http_learn_html_literal(h, "\" data-x-max=\"");
        ngx_http_learn_html_value(h, ex->max);
        ngx_http_learn_html_literal(h, "\"");
    }

    if (ey->n) {
        ngx_http_learn_html_literal(h, " data-y-min=\"");
        ngx_http_learn_html_value(h, ey->min);
        ngx_http_learn_html_literal(h, "\" data-y-max=\"");
        ngx_http_learn_html_value(h, ey->max);
        ngx_http_learn_html_literal(h, "\"");
    }
}


/* the title, the plot's frame and the axis labels */

static void
ngx_http_learn_svg_labels(ngx_http_learn_html_t *h,
    const ngx_http_learn_svg_chart_t *chart, ngx_uint_t width,
    ngx_uint_t height)
{
    ngx_uint_t  bottom;

    bottom = height - NGX_HTTP_LEARN_SVG_BOTTOM;

    ngx_http_learn_html_printf(h, "<rect class=\"plot\" x=\"%d\" y=\"%d\" "
                               "width=\"%ui\" height=\"%ui\" fill=\"#fcfcfc\" "
                               "stroke=\"#999\"/>",
                               NGX_HTTP_LEARN_SVG_LEFT, NGX_HTTP_LEARN_SVG_TOP,
                               width - NGX_HTTP_LEARN_SVG_LEFT
                               - NGX_HTTP_LEARN_SVG_RIGHT,
                               bottom - NGX_HTTP_LEARN_SVG_TOP);

    ngx_http_learn_html_printf(h, "<text class=\"title\" x=\"%d\" y=\"16\" "
                               "style=\"font-weight:bold;font-size:13px\">",
                               NGX_HTTP_LEARN_SVG_LEFT);
    ngx_http_learn_html_str(h, &chart->title);

    ngx_http_learn_html_printf(h, "</text><text class=\"xlabel\" x=\"%ui\" "
                               "y=\"%ui\" text-anchor=\"middle\">",
                               (NGX_HTTP_LEARN_SVG_LEFT + width
                                - NGX_HTTP_LEARN_SVG_RIGHT) / 2,
                               height - 8);
    ngx_http_learn_html_str(h, &chart->x_label);

    ngx_http_learn_html_printf(h, "</text><text class=\"ylabel\" "
                               "transform=\"translate(14,%ui) rotate(-90)\" "
                               "text-anchor=\"middle\">",
                               (NGX_HTTP_LEARN_SVG_TOP + bottom) / 2);
    ngx_http_learn_html_str(h, &chart->y_label);
    ngx_http_learn_html_literal(h, "</text>");
}


/* one swatch and name per series, in a row under the title */

static void
ngx_http_learn_svg_legend(ngx_http_learn_html_t *h,
    const ngx_http_learn_svg_series_t *series, ngx_uint_t nseries,
    ngx_uint_t width)
{
    ngx_uint_t  k, x;

    ngx_http_learn_html_literal(h, "<g class=\"legend\">");

    x = NGX_HTTP_LEARN_SVG_LEFT;

    for (k = 0; k < nseries && x < width; k++) {
        ngx_http_learn_html_printf(h, "<rect x=\"%ui\" y=\"25\" width=\"12\" "
                                   "height=\"8\" fill=\"%s\"/>"
                                   "<text x=\"%ui\" y=\"33\">",
                                   x, ngx_http_learn_svg_colors[k], x + 16);
        ngx_http_learn_html_str(h, &series[k].name);
        ngx_http_learn_html_literal(h, "</text>");

        /* about 6.5 px a character at 11 px */
        x += 32 + ngx_min(series[k].name.len, 40) * 13 / 2;
    }

    ngx_http_learn_html_literal(h, "</g>");
}


static void
ngx_http_learn_svg_y_axis(ngx_http_learn_html_t *h,
    ngx_http_learn_svg_axis_t *ay, ngx_uint_t width)
{
    double      y, ticks[NGX_HTTP_LEARN_SVG_TICKS];
    ngx_uint_t  i, n;

    n = ngx_http_learn_svg_ticks(ay, ticks);

    ngx_http_learn_html_literal(h, "<g class=\"axis y\">");

    for (i = 0; i < n; i++) {
        y = ngx_http_learn_svg_map(ay, ticks[i]);

        ngx_http_learn_html_printf(h, "<line x1=\"%d\" x2=\"%ui\" "
                                   "y1=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>"
                                   "<text x=\"%d\" y=\"%.1f\" "
                                   "text-anchor=\"end\">",
                                   NGX_HTTP_LEARN_SVG_LEFT,
                                   width - NGX_HTTP_LEARN_SVG_RIGHT, y, y,
                                   NGX_HTTP_LEARN_SVG_LEFT - 4, y + 4);
        ngx_http_learn_html_number(h, ticks[i], 4);
        ngx_http_learn_html_literal(h, "</text>");
    }

    ngx_http_learn_html_literal(h, "</g>");
}


static void
ngx_http_learn_svg_empty(ngx_http_learn_html_t *h, ngx_uint_t width,
    ngx_uint_t height)
{
    ngx_http_learn_html_printf(h, "<text class=\"empty\" x=\"%ui\" y=\"%ui\" "
                               "text-anchor=\"middle\">no data yet</text>",
                               width / 2, height / 2);
}
