//! The overview's uptime bars (CONTRACT section 10): 90 bars a checked site, one per
//! UTC day, newest right, coloured by that day's uptime, with the 90-day percentage.
//! Each bar carries its date, uptime and that day's incidents as text, shown as a
//! tooltip on hover and on focus (a tap focuses it: `tabindex`), and read as it is
//! without CSS or JavaScript. On a phone the last 30 days are drawn.

use std::fmt::Write;

use super::View;
use crate::platform::uptime::{overall, shown_days, ShownDay};
use crate::platform::ComponentView;
use crate::text::html_escape as esc;

/// The bars' CSS, added to the pages' style.
pub(super) const STYLE: &str = "\
.up{margin-top:.6rem}.bars{display:flex;gap:2px;height:2rem;margin:0;padding:0}\
.b{flex:1;min-width:0;border-radius:2px;background:var(--ok);position:relative;outline:0;font-style:normal}\
.b.nd{background:var(--line)}.b.dg{background:var(--minor)}.b.po{background:var(--major)}.b.mo{background:var(--crit)}\
.b:hover,.b:focus{opacity:.7}\
.b>span{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}\
.b:hover>span,.b:focus>span{clip:auto;width:auto;height:auto;overflow:visible;bottom:2.4rem;left:50%;transform:translateX(-50%);\
z-index:2;background:var(--card);color:var(--fg);border:1px solid var(--line);border-radius:.4rem;padding:.4rem .6rem;\
font-size:.85rem;white-space:normal;width:max-content;max-width:16rem;box-shadow:0 2px 8px rgba(0,0,0,.15)}\
.b:nth-child(-n+15):hover>span,.b:nth-child(-n+15):focus>span{left:0;transform:none}\
.b:nth-last-child(-n+15):hover>span,.b:nth-last-child(-n+15):focus>span{left:auto;right:0;transform:none}\
.upl{display:flex;justify-content:space-between;font-size:.8rem;color:var(--muted);margin-top:.2rem}.d30{display:none}\
@media (max-width:36rem){.b:nth-child(-n+60){display:none}.d90{display:none}.d30{display:inline}\
.b:nth-child(n+61):nth-child(-n+75):hover>span,.b:nth-child(n+61):nth-child(-n+75):focus>span{left:0;transform:none}}";

fn class(d: &ShownDay) -> &'static str {
    match d.uptime {
        None => "nd",
        Some(u) if u >= 99.95 => "ok",
        Some(u) if u >= 99.0 => "dg",
        Some(u) if u >= 95.0 => "po",
        Some(_) => "mo",
    }
}

/// `1 h 5 min`, `3 min 20 s`, `12 s`.
fn took(ms: u64) -> String {
    let s = ms / 1000;
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, s) => format!("{s} s"),
        (0, m, s) => format!("{m} min {s} s"),
        (h, m, _) => format!("{h} h {m} min"),
    }
}

/// The bars of component `c`, or nothing for a component without checks.
pub(super) fn bars(view: &View, c: &ComponentView) -> String {
    if !c.checked {
        return String::new();
    }
    let p = &view.platform;
    let days = p.uptime.get(&c.name).map_or(&[][..], Vec::as_slice);
    let shown = shown_days(&c.name, days, &p.incidents, p.built_at);
    let mut b = String::with_capacity(shown.len() * 80 + 300);
    b.push_str("<div class=\"up\"><div class=\"bars\">");
    // Written by hand: `time`'s formatter costs more than the rest of a bar.
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    for d in &shown {
        let month = MONTHS[usize::from(u8::from(d.day.month())).saturating_sub(1) % 12];
        let _ = write!(
            b,
            "<i class=\"b {}\" tabindex=\"0\"><span><b>{month} {}, {}</b> ",
            class(d),
            d.day.day(),
            d.day.year()
        );
        match d.uptime {
            Some(u) => {
                let _ = write!(b, "{u:.2}&nbsp;% up");
                if d.down_ms > 0 {
                    let _ = write!(b, ", down {}", took(d.down_ms));
                }
            }
            None => b.push_str("No data"),
        }
        for i in d.incidents.iter().filter_map(|i| p.incidents.get(*i)) {
            let _ = write!(b, "<br>{}", esc(&i.name));
        }
        b.push_str("</span></i>");
    }
    let pct = overall(&shown).map_or_else(
        || "No data yet".to_string(),
        |u| format!("{u:.2}&nbsp;% uptime"),
    );
    let _ = write!(
        b,
        "</div><div class=\"upl\"><span><span class=\"d90\">90 days ago</span><span class=\"d30\">30 days ago</span></span><span>{pct}</span><span>Today</span></div></div>"
    );
    b
}

#[cfg(test)]
mod tests {
    use super::took;

    #[test]
    fn durations_read_short() {
        assert_eq!(took(12_400), "12 s");
        assert_eq!(took(200_000), "3 min 20 s");
        assert_eq!(took(3_900_000), "1 h 5 min");
    }
}
