//! The report as one self-contained HTML file an owner opens on a phone: the headline numbers
//! first, then charts drawn by plotters' SVG backend (no system fonts: the browser draws the
//! text) — requests and bookings per day, first-response times per source, the funnel
//! request → qualified → booked per channel, and requests by hour of day with the unanswered
//! ones. No script, no external file; names and phones never appear.

use super::{Kpis, Report, Request, render};
use chrono::{Datelike, Duration, Timelike};
use chrono_tz::Tz;
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::fmt::Write;

const CSS: &str = "
*{box-sizing:border-box}body{margin:0;font:16px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1d1d1f;background:#f5f5f7}
main{max-width:960px;margin:0 auto;padding:12px}h1{font-size:1.35em;margin:8px 0}h2{font-size:1.1em;margin:20px 0 8px}
.period{color:#6e6e73;margin:0 0 12px}.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:10px}
.card{background:#fff;border-radius:12px;padding:12px}.card b{display:block;font-size:1.8em;line-height:1.2}.card span{color:#6e6e73;font-size:.9em}
.card small{display:block;color:#6e6e73;margin-top:4px}figure{margin:0 0 12px;background:#fff;border-radius:12px;padding:8px}
figure svg{display:block;width:100%;height:auto}.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:0 12px}figcaption{color:#6e6e73;font-size:.9em;padding:4px}
table{border-collapse:collapse;width:100%;background:#fff;border-radius:12px;font-size:.9em}th,td{padding:6px 8px;text-align:right;border-bottom:1px solid #eee}
th:first-child,td:first-child{text-align:left}.scroll{overflow-x:auto}.note{color:#6e6e73;font-size:.85em}
";

const VIOLET: RGBColor = RGBColor(0x5b, 0x3f, 0x8c);
const LILAC: RGBColor = RGBColor(0xc9, 0xb8, 0xe8);
const GREEN: RGBColor = RGBColor(0x24, 0x8a, 0x3d);
const RED: RGBColor = RGBColor(0xd7, 0x00, 0x15);

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn pct(v: Option<f64>, scale: f64) -> String {
    v.map_or_else(|| "—".into(), |v| format!("{:.0} %", v * scale))
}

/// The whole page.
pub fn page(report: &Report, business: &str, tz: Tz) -> String {
    let k = &report.kpis.all;
    let mut body = format!(
        "<h1>{} — отчёт</h1><p class=\"period\">{} – {} ({})</p>",
        escape(business),
        report.period.from.format("%d.%m.%Y"),
        report.period.to.format("%d.%m.%Y"),
        escape(&report.period.timezone)
    );
    body.push_str("<section class=\"cards\">");
    let cards = [
        (
            pct(k.answered_within_60s, 100.0),
            "ответили в течение минуты",
            format!("обращений: {}", k.requests),
        ),
        (
            pct(k.qualified_pct, 1.0),
            "квалифицированы",
            format!("{} из {}", k.qualified, k.requests),
        ),
        (
            pct(k.booking_conversion_pct, 1.0),
            "записались",
            format!("{} записей", k.booked),
        ),
        (
            pct(k.no_show_rate_pct, 1.0),
            "не пришли",
            k.unmarked_past_bookings
                .map_or_else(String::new, |n| format!("не отмечено: {n}")),
        ),
    ];
    for (value, what, small) in cards {
        let _ = write!(
            body,
            "<div class=\"card\"><b>{value}</b><span>{what}</span><small>{}</small></div>",
            escape(&small)
        );
    }
    body.push_str("</section>");
    let charts = [
        (
            "Обращения и записи по дням",
            per_day(report, tz),
            "светлые столбцы — обращения, тёмные — записи",
        ),
        (
            "Время первого ответа",
            response_times(report),
            "доля обращений каждого источника, %: м — минуты, ч — часы, «нет» — без ответа",
        ),
        (
            "Воронка по каналам",
            funnel(report),
            "обращения → квалифицированы → записались",
        ),
        (
            "Когда пишут клиенты",
            by_hour(report, tz),
            "обращения по часу первого сообщения; красные — оставшиеся без ответа",
        ),
    ];
    body.push_str("<div class=\"charts\">");
    for (title, svg, caption) in charts {
        let _ = write!(
            body,
            "<section><h2>{title}</h2><figure>{svg}<figcaption>{caption}</figcaption></figure></section>"
        );
    }
    body.push_str("</div>");
    body.push_str("<h2>Все показатели</h2><div class=\"scroll\">");
    body.push_str(&sources_table(report));
    body.push_str(
        "</div><p class=\"note\">Обращение — сообщения одного клиента без перерыва больше \
         12 часов. Ответ в течение минуты считается от всех обращений, включая оставшиеся без \
         ответа.</p>",
    );
    format!(
        "<!doctype html><html lang=\"ru\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} — отчёт {}</title><style>{CSS}</style></head><body><main>{body}</main></body></html>",
        escape(business),
        report.period.from.format("%d.%m.%Y")
    )
}

/// A row of the KPI table: its label and how to show a value.
type TableRow = (&'static str, fn(&Kpis) -> String);

fn sources_table(report: &Report) -> String {
    let mut cols: Vec<(String, &Kpis)> = report
        .kpis
        .by_source
        .iter()
        .map(|(s, k)| (s.clone(), k))
        .collect();
    cols.push(("всего".into(), &report.kpis.all));
    let mut t = String::from("<table><tr><th>показатель</th>");
    for (name, _) in &cols {
        let _ = write!(t, "<th>{}</th>", escape(name));
    }
    t.push_str("</tr>");
    let rows: [TableRow; 9] = [
        ("обращения", |k| k.requests.to_string()),
        ("с ответом", |k| k.answered.to_string()),
        ("первый ответ, медиана", |k| {
            k.first_response_median_s
                .map_or_else(|| "—".into(), render::duration)
        }),
        ("первый ответ, p90", |k| {
            k.first_response_p90_s
                .map_or_else(|| "—".into(), render::duration)
        }),
        ("ответ за минуту", |k| {
            pct(k.answered_within_60s, 100.0)
        }),
        ("ответ за 15 минут", |k| {
            pct(k.answered_within_15min, 100.0)
        }),
        ("квалифицированы", |k| {
            pct(k.qualified_pct, 1.0)
        }),
        ("записались", |k| {
            pct(k.booking_conversion_pct, 1.0)
        }),
        ("неявки", |k| pct(k.no_show_rate_pct, 1.0)),
    ];
    for (label, read) in rows {
        let _ = write!(t, "<tr><td>{label}</td>");
        for (_, k) in &cols {
            let _ = write!(t, "<td>{}</td>", read(k));
        }
        t.push_str("</tr>");
    }
    t.push_str("</table>");
    t
}

/// An SVG chart of `width`×`height`, scaled by CSS to its box.
fn svg(
    width: u32,
    height: u32,
    draw: impl FnOnce(&DrawingArea<SVGBackend, plotters::coord::Shift>),
) -> String {
    let mut out = String::new();
    {
        let area = SVGBackend::with_string(&mut out, (width, height)).into_drawing_area();
        let _ = area.fill(&WHITE);
        draw(&area);
        let _ = area.present();
    }
    // Its viewBox without a fixed size, so the chart follows the page's width.
    out.replacen(
        &format!("width=\"{width}\" height=\"{height}\""),
        "role=\"img\"",
        1,
    )
}

/// Bars over categories: for each series (drawn wide to narrow, one on top of the other) the
/// value of each category.
fn bars(labels: &[String], series: &[(&[u32], RGBColor, u32)], width: u32, height: u32) -> String {
    let n = labels.len().max(1) as u32;
    let top = series
        .iter()
        .flat_map(|(v, _, _)| v.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1);
    svg(width, height, |area| {
        let Ok(mut chart) = ChartBuilder::on(area)
            .margin(8)
            .x_label_area_size(40)
            .y_label_area_size(40)
            .build_cartesian_2d((0u32..n).into_segmented(), 0u32..top + top / 8 + 1)
        else {
            return;
        };
        let label_of = |v: &SegmentValue<u32>| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                labels.get(*i as usize).cloned().unwrap_or_default()
            }
            SegmentValue::Last => String::new(),
        };
        let _ = chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(labels.len().min(24))
            .x_label_formatter(&label_of)
            .y_labels(5)
            .label_style(("sans-serif", 17))
            .draw();
        for (values, color, margin) in series {
            let _ = chart.draw_series(
                Histogram::vertical(&chart)
                    .style(color.filled())
                    .margin(*margin)
                    .data(values.iter().enumerate().map(|(i, v)| (i as u32, *v))),
            );
        }
    })
}

fn per_day(report: &Report, tz: Tz) -> String {
    let days = (report.period.to - report.period.from).num_days().max(0) + 1;
    let days = days.min(92);
    let mut requests = vec![0u32; days as usize];
    let mut booked = vec![0u32; days as usize];
    for r in &report.requests {
        let d = (r.first_client_at.with_timezone(&tz).date_naive() - report.period.from).num_days();
        if (0..days).contains(&d) {
            requests[d as usize] += 1;
            booked[d as usize] += u32::from(r.booked);
        }
    }
    let labels: Vec<String> = (0..days)
        .map(|i| {
            let d = report.period.from + Duration::days(i);
            if days <= 7 {
                format!(
                    "{} {}",
                    crate::engine::reply::weekday_short(d.weekday()),
                    d.day()
                )
            } else {
                d.format("%d.%m").to_string()
            }
        })
        .collect();
    bars(
        &labels,
        &[(&requests, LILAC, 6), (&booked, VIOLET, 16)],
        520,
        300,
    )
}

/// The buckets of first-response time.
const BUCKETS: [(&str, f64); 6] = [
    ("<1м", 60.0),
    ("1–5м", 300.0),
    ("5–15м", 900.0),
    ("15–60м", 3600.0),
    ("1–4ч", 14_400.0),
    (">4ч", f64::INFINITY),
];

fn bucket(r: &Request) -> usize {
    match r.first_response_s {
        None => BUCKETS.len(),
        Some(s) => BUCKETS
            .iter()
            .position(|(_, limit)| s <= *limit)
            .unwrap_or(BUCKETS.len() - 1),
    }
}

fn response_times(report: &Report) -> String {
    let mut per_source: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    for r in &report.requests {
        per_source
            .entry(r.source.as_str())
            .or_insert_with(|| vec![0; BUCKETS.len() + 1])[bucket(r)] += 1;
    }
    let mut labels: Vec<String> = BUCKETS.iter().map(|(l, _)| (*l).to_string()).collect();
    labels.push("нет".into());
    let palette = [LILAC, VIOLET, GREEN, RED];
    // Shares in percent, so sources of different size compare.
    let shares: Vec<(String, Vec<u32>)> = per_source
        .iter()
        .map(|(s, counts)| {
            let total: u32 = counts.iter().sum::<u32>().max(1);
            (
                (*s).to_string(),
                counts.iter().map(|c| c * 100 / total).collect(),
            )
        })
        .collect();
    let series: Vec<(&[u32], RGBColor, u32)> = shares
        .iter()
        .enumerate()
        .map(|(i, (_, v))| (v.as_slice(), palette[i % palette.len()], 6 + 8 * i as u32))
        .collect();
    let legend: String = shares
        .iter()
        .enumerate()
        .map(|(i, (s, _))| {
            let c = palette[i % palette.len()];
            format!(
                "<span style=\"color:rgb({},{},{})\">■</span> {} ",
                c.0,
                c.1,
                c.2,
                escape(s)
            )
        })
        .collect();
    format!(
        "{}<p class=\"note\">{legend}</p>",
        bars(&labels, &series, 520, 300)
    )
}

fn funnel(report: &Report) -> String {
    let mut per_channel: BTreeMap<&str, [u32; 3]> = BTreeMap::new();
    for r in &report.requests {
        let e = per_channel.entry(r.channel.as_str()).or_default();
        e[0] += 1;
        e[1] += u32::from(r.qualified);
        e[2] += u32::from(r.booked);
    }
    let labels: Vec<String> = per_channel.keys().map(|c| (*c).to_string()).collect();
    let column = |i: usize| -> Vec<u32> { per_channel.values().map(|v| v[i]).collect() };
    let (a, b, c) = (column(0), column(1), column(2));
    bars(
        &labels,
        &[(&a, LILAC, 8), (&b, VIOLET, 20), (&c, GREEN, 32)],
        520,
        300,
    )
}

fn by_hour(report: &Report, tz: Tz) -> String {
    let mut all = vec![0u32; 24];
    let mut unanswered = vec![0u32; 24];
    for r in &report.requests {
        let h = r.first_client_at.with_timezone(&tz).hour() as usize;
        all[h] += 1;
        unanswered[h] += u32::from(r.first_response_s.is_none());
    }
    let labels: Vec<String> = (0..24).map(|h| format!("{h}")).collect();
    bars(
        &labels,
        &[(&all, LILAC, 2), (&unanswered, RED, 6)],
        520,
        280,
    )
}
