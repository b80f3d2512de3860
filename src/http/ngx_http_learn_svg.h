
/*
 * Charts as inline SVG for the HTML pages (ngx_http_learn_html.h): line
 * charts of (x, y) series and grouped bar charts, with axes, ticks,
 * labels and a legend, written into a page's buffer.  No script: a
 * browser draws them as they are, and a test reads them back.
 *
 * What a chart holds, for tests and scrapers:
 *
 *   <svg class="learn-chart" data-chart="lines|bars" data-title="..."
 *        data-x-min data-x-max data-y-min data-y-max ...>
 *     <g class="series" data-series="K" data-name="NAME" data-points="N">
 *       <polyline points="..."/>                       (lines; one per run
 *                                                       of finite points)
 *       <circle class="pt" data-x="X" data-y="Y" .../>  (lines: every point)
 *       <rect class="bar" data-label="L" data-y="Y" .../>  (bars)
 *     </g>
 *   </svg>
 *
 * data-x and data-y are the values given, written as learn_status JSON
 * writes numbers (ngx_http_learn_html_value()); data-x-min ... are the
 * data's extent (finite points only; absent when there are none).
 *
 * A job's page draws its per-epoch curves with one call:
 *
 *     double                        epoch[E], loss[E], val_loss[E];
 *     ngx_http_learn_svg_series_t   s[2];
 *     ngx_http_learn_svg_chart_t    c;
 *
 *     ngx_memzero(&c, sizeof(c));
 *     ngx_str_set(&c.title, "loss by epoch");
 *     ngx_str_set(&c.x_label, "epoch");
 *     ngx_str_set(&c.y_label, "loss");
 *     c.y_scale = NGX_HTTP_LEARN_SVG_AUTO;
 *
 *     ngx_str_set(&s[0].name, "loss");
 *     s[0].x = epoch; s[0].y = loss; s[0].n = E;
 *     ngx_str_set(&s[1].name, "val_loss");
 *     s[1].x = epoch; s[1].y = val_loss; s[1].n = E;   (NaN: no value)
 *
 *     ngx_http_learn_svg_lines(h, &c, s, 2);
 *
 * The arrays are read during the call only.  Every string is escaped.
 */


#ifndef _NGX_HTTP_LEARN_SVG_H_INCLUDED_
#define _NGX_HTTP_LEARN_SVG_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_learn_html.h"


#define NGX_HTTP_LEARN_SVG_LINEAR    0
#define NGX_HTTP_LEARN_SVG_LOG       1   /* y > 0 only: others not drawn */
#define NGX_HTTP_LEARN_SVG_AUTO      2   /* log when every y > 0 and the
                                            largest is 100x the smallest */

#define NGX_HTTP_LEARN_SVG_MAX_SERIES  8  /* colours; more are refused */


typedef struct {
    ngx_str_t                      name;      /* the legend's text */
    const double                  *x;         /* lines: n values; NULL:
                                                 0, 1, 2, ...; bars: unused */
    const double                  *y;         /* n values; NaN or Inf: no
                                                 point (a gap in the line),
                                                 no bar */
    ngx_uint_t                     n;
} ngx_http_learn_svg_series_t;


typedef struct {
    ngx_str_t                      title;     /* above the plot */
    ngx_str_t                      x_label;
    ngx_str_t                      y_label;
    ngx_uint_t                     width;     /* px; 0: 720 */
    ngx_uint_t                     height;    /* px; 0: 300 */
    ngx_uint_t                     y_scale;   /* NGX_HTTP_LEARN_SVG_* */
} ngx_http_learn_svg_chart_t;


/* one line per series; NGX_ERROR: more than MAX_SERIES (nothing written) */
ngx_int_t ngx_http_learn_svg_lines(ngx_http_learn_html_t *h,
    const ngx_http_learn_svg_chart_t *chart,
    const ngx_http_learn_svg_series_t *series, ngx_uint_t nseries);

/*
 * Grouped bars: one group per label, one bar per series in it
 * (series[k].y[i] is series k's value for labels[i]; n >= nlabels),
 * from 0 (y_scale is ignored: linear).
 */
ngx_int_t ngx_http_learn_svg_bars(ngx_http_learn_html_t *h,
    const ngx_http_learn_svg_chart_t *chart, const ngx_str_t *labels,
    ngx_uint_t nlabels, const ngx_http_learn_svg_series_t *series,
    ngx_uint_t nseries);


#endif /* _NGX_HTTP_LEARN_SVG_H_INCLUDED_ */
