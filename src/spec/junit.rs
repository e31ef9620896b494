//! JUnit XML for CI systems: one `<testsuite>` per dialog, one `<testcase>` per variation path
//! (its repetitions folded in: a path that failed in some runs only is a failure of type
//! `flaky`). The failure body is the same readable diff the terminal shows. Over HTTP a path
//! that could run none of its steps is `<skipped>` with the reason, and the checks left out of
//! a path that ran are listed in its `<system-out>`.

use super::runner::{DialogReport, PathRun, Verdict};
use quick_xml::Writer;
use quick_xml::events::{BytesCData, BytesDecl, BytesText, Event};
use std::io::Write;

/// XML 1.0 cannot carry most control characters; replace them.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() && !matches!(c, '\n' | '\t' | '\r') {
                '�'
            } else {
                c
            }
        })
        .collect()
}

fn secs(us: u64) -> String {
    format!("{:.6}", us as f64 / 1_000_000.0)
}

/// Write the report of all dialogs as JUnit XML.
pub fn write(reports: &[DialogReport], elapsed_us: u64, out: impl Write) -> std::io::Result<()> {
    let mut w = Writer::new_with_indent(out, b' ', 2);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let tests: usize = reports.iter().map(|r| r.paths).sum();
    let failures: usize = reports
        .iter()
        .map(|r| {
            (0..r.paths)
                .filter(|p| r.path_verdict(*p) != Verdict::Pass)
                .count()
        })
        .sum();
    w.create_element("testsuites")
        .with_attribute(("name", "bot test dialogs"))
        .with_attribute(("tests", tests.to_string().as_str()))
        .with_attribute(("failures", failures.to_string().as_str()))
        .with_attribute(("time", secs(elapsed_us).as_str()))
        .write_inner_content(|w| {
            for r in reports {
                suite(w, r)?;
            }
            Ok(())
        })?;
    w.get_mut().write_all(b"\n")?;
    Ok(())
}

/// Over HTTP: a run that could not send any step of its path.
fn ran_nothing(r: &DialogReport, run: &PathRun) -> bool {
    run.failure.is_none() && !run.skipped.is_empty() && run.steps_not_run(r.steps).len() == r.steps
}

fn suite<W: Write>(w: &mut Writer<W>, r: &DialogReport) -> std::io::Result<()> {
    let failures = (0..r.paths)
        .filter(|p| r.path_verdict(*p) != Verdict::Pass)
        .count();
    let skipped = (0..r.paths)
        .filter(|p| {
            r.runs
                .iter()
                .filter(|x| x.path == *p)
                .all(|x| ran_nothing(r, x))
        })
        .count();
    w.create_element("testsuite")
        .with_attribute(("name", clean(&r.id).as_str()))
        .with_attribute(("tests", r.paths.to_string().as_str()))
        .with_attribute(("failures", failures.to_string().as_str()))
        .with_attribute(("skipped", skipped.to_string().as_str()))
        .with_attribute(("errors", "0"))
        .with_attribute(("time", secs(r.elapsed_us).as_str()))
        .with_attribute(("file", clean(&r.file).as_str()))
        .write_inner_content(|w| {
            for path in 0..r.paths {
                case(w, r, path)?;
            }
            Ok(())
        })?;
    Ok(())
}

fn case<W: Write>(w: &mut Writer<W>, r: &DialogReport, path: usize) -> std::io::Result<()> {
    let runs: Vec<_> = r.runs.iter().filter(|x| x.path == path).collect();
    let choices = runs
        .first()
        .map(|x| {
            x.choices
                .iter()
                .map(|c| (c + 1).to_string())
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let name = format!(
        "{}: path {} of {} (variations {choices})",
        r.title,
        path + 1,
        r.paths
    );
    let time: u64 = runs.iter().map(|x| x.elapsed_us).sum();
    let verdict = r.path_verdict(path);
    let el = w
        .create_element("testcase")
        .with_attribute(("name", clean(&name).as_str()))
        .with_attribute(("classname", clean(&format!("dialogs.{}", r.id)).as_str()))
        .with_attribute(("file", clean(&r.file).as_str()))
        .with_attribute(("time", secs(time).as_str()));
    let Some(failed) = runs.iter().find_map(|x| x.failure.as_ref()) else {
        let skips: Vec<String> = runs
            .first()
            .map(|x| {
                x.skipped
                    .iter()
                    .map(|s| format!("step {} {} {}: {}", s.step, s.step_path, s.what, s.why))
                    .collect()
            })
            .unwrap_or_default();
        if skips.is_empty() {
            el.write_empty()?;
        } else if runs.iter().all(|x| ran_nothing(r, x)) {
            let why = runs
                .first()
                .and_then(|x| x.skipped.first())
                .map(|s| s.why.clone())
                .unwrap_or_default();
            el.write_inner_content(|w| {
                w.create_element("skipped")
                    .with_attribute((
                        "message",
                        clean(&format!("needs in-process: {why}")).as_str(),
                    ))
                    .write_empty()?;
                Ok(())
            })?;
        } else {
            el.write_inner_content(|w| {
                w.create_element("system-out")
                    .write_text_content(BytesText::new(&clean(&format!(
                        "not checked over HTTP (needs in-process):\n{}",
                        skips.join("\n")
                    ))))?;
                Ok(())
            })?;
        }
        return Ok(());
    };
    let passed = runs.iter().filter(|x| x.passed).count();
    let kind = if verdict == Verdict::Flaky {
        "flaky".to_string()
    } else {
        failed.check.clone()
    };
    let message = format!(
        "{}{} at {}: {}: {}",
        if verdict == Verdict::Flaky {
            format!("flaky ({passed} of {} runs passed): ", runs.len())
        } else {
            String::new()
        },
        failed.step_path,
        failed.location,
        failed.check,
        failed.detail
    );
    let body = clean(&failed.render());
    el.write_inner_content(|w| {
        w.create_element("failure")
            .with_attribute(("message", clean(&message).as_str()))
            .with_attribute(("type", clean(&kind).as_str()))
            .write_cdata_content(BytesCData::new(body.replace("]]>", "]]&gt;")))?;
        let transcript: Vec<String> = runs
            .iter()
            .find(|x| !x.passed)
            .map(|x| {
                x.transcript
                    .iter()
                    .map(|l| format!("{} {}: {}", l.step, l.who, l.text))
                    .collect()
            })
            .unwrap_or_default();
        w.create_element("system-out")
            .write_text_content(BytesText::new(&clean(&transcript.join("\n"))))?;
        Ok(())
    })?;
    Ok(())
}
