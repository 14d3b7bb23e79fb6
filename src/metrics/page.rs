//! The live page at `/`: one self-contained HTML document (no external
//! script, font or style), rendered with the numbers as of the request, so
//! it reads without scripts; its one small script asks `/status` every
//! second and a half and puts the new numbers in place.

use std::fmt::Write as _;

use serde_json::Value as Json;

/// The figures shown, by element id (the keys of `/status`'s `text`) and
/// label.
const FIGURES: [(&str, &str); 17] = [
    ("state", "State"),
    ("elapsed", "Elapsed"),
    ("progress", "Progress"),
    ("eta", "Time left"),
    ("read", "Read"),
    ("inserted", "Inserted"),
    ("updated", "Updated"),
    ("skipped", "Skipped"),
    ("failed", "Failed"),
    ("in_doubt", "In doubt"),
    ("deleted", "Deleted"),
    ("rate_now", "Rate now"),
    ("rate_average", "Rate on average"),
    ("queue", "Queue"),
    ("workers", "Busy workers"),
    ("batch_write", "Batch write time"),
    ("retries", "Retries"),
];

const STYLE: &str = "
body{font:15px/1.4 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
header{padding:12px 16px;background:#1d2330;color:#fff}
header h1{font-size:18px;margin:0}
header p{margin:2px 0 0;opacity:.8;font-size:13px;word-break:break-all}
main{padding:12px 16px;max-width:980px}
.bar{height:10px;background:#dde1e8;border-radius:5px;overflow:hidden;margin:4px 0 12px}
.bar div{height:100%;background:#2f7d4f;width:0}
dl{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:8px;margin:0}
dl div{background:#fff;border-radius:6px;padding:8px 10px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
dt{font-size:12px;color:#5b6577;text-transform:uppercase;letter-spacing:.03em}
dd{margin:0;font-size:18px;font-variant-numeric:tabular-nums;word-break:break-word}
.state-failed #state,.state-interrupted #state,#failed.bad{color:#b42318}
.state-completed #state{color:#2f7d4f}
h2{font-size:15px;margin:16px 0 6px}
ol{padding-left:0;list-style:none;margin:0;font-size:13px}
li{background:#fff;border-left:3px solid #d9a400;padding:4px 8px;margin-bottom:4px;word-break:break-word}
li.ERROR{border-color:#b42318}
small{color:#5b6577}
#conn{font-size:12px;color:#5b6577}
";

const SCRIPT: &str = "
(function(){
var conn=document.getElementById('conn');
function esc(s){return String(s).replace(/[&<>\"]/g,function(c){return{'&':'&amp;','<':'&lt;','>':'&gt;','\"':'&quot;'}[c]})}
function show(s){
 for(var k in s.text){var e=document.getElementById(k);if(e)e.textContent=s.text[k];}
 document.body.className='state-'+s.state;
 var f=document.getElementById('failed');f.className=s.records.failed>0?'bad':'';
 var p=s.progress&&s.progress.fraction!=null?s.progress.fraction:0;
 document.getElementById('fill').style.width=(p*100).toFixed(1)+'%';
 var h='';
 for(var i=s.recent.length-1;i>=0;i--){var n=s.recent[i];
  h+='<li class=\"'+esc(n.level)+'\"><small>'+esc(new Date(n.time*1000).toLocaleTimeString())+' '+esc(n.level)+(n.at?' '+esc(n.at):'')+'</small><br>'+esc(n.message)+'</li>';}
 document.getElementById('recent').innerHTML=h||'<li>none</li>';
 document.title=s.text.progress.split(' (')[0]+' '+s.state+' · '+s.pipeline_id;
 conn.textContent='live; updated '+new Date().toLocaleTimeString();
}
function tick(){
 var r=new XMLHttpRequest();r.open('GET','/status');r.timeout=5000;
 r.onload=function(){if(r.status==200){try{show(JSON.parse(r.responseText));}catch(e){}}setTimeout(tick,1500);};
 r.onerror=r.ontimeout=function(){conn.textContent='not answering since '+new Date().toLocaleTimeString()+': the run has ended or the server stopped; the numbers are the last seen';setTimeout(tick,5000);};
 r.send();
}
tick();
})();
";

/// The page for `status` ([`super::Metrics::status`]).
pub fn render(status: &Json) -> String {
    let text = |k: &str| status["text"][k].as_str().unwrap_or("").to_string();
    let id = status["pipeline_id"].as_str().unwrap_or("");
    let slice = match &status["slice"] {
        Json::Object(s) => format!(" · slice {} of {}", s["id"], s["count"]),
        _ => String::new(),
    };
    let state = status["state"].as_str().unwrap_or("");
    let fraction = status["progress"]["fraction"].as_f64().unwrap_or(0.0);
    let mut h = String::with_capacity(8 * 1024);
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{} · {}</title><noscript><meta http-equiv=\"refresh\" content=\"5\"></noscript>\
         <style>{STYLE}</style></head>\n<body class=\"state-{}\"><header><h1>{}{}</h1>\
         <p>{} → {}</p><p>pipeline-cli {} · run {}</p></header>\n<main>\n",
        esc(state),
        esc(id),
        esc(state),
        esc(id),
        esc(&slice),
        esc(status["source"].as_str().unwrap_or("")),
        esc(status["sink"].as_str().unwrap_or("")),
        esc(status["version"].as_str().unwrap_or("")),
        esc(status["run_id"].as_str().unwrap_or("")),
    );
    let _ = write!(
        h,
        "<div class=\"bar\"><div id=\"fill\" style=\"width:{:.1}%\"></div></div>\n<dl>\n",
        fraction * 100.0
    );
    for (key, label) in FIGURES {
        let _ = writeln!(
            h,
            "<div><dt>{label}</dt><dd id=\"{key}\">{}</dd></div>",
            esc(&text(key))
        );
    }
    h.push_str("</dl>\n<h2>Last warnings and errors</h2>\n<ol id=\"recent\">");
    let notes = status["recent"].as_array().cloned().unwrap_or_default();
    if notes.is_empty() {
        h.push_str("<li>none</li>");
    }
    for n in notes.iter().rev() {
        let level = n["level"].as_str().unwrap_or("");
        let at = n["at"].as_str().unwrap_or("");
        let _ = write!(
            h,
            "<li class=\"{}\"><small>{} {}{}{}</small><br>{}</li>",
            esc(level),
            esc(&crate::metrics::human::clock_of_day(
                n["time"].as_f64().unwrap_or(0.0)
            )),
            esc(level),
            if at.is_empty() { "" } else { " " },
            esc(at),
            esc(n["message"].as_str().unwrap_or(""))
        );
    }
    let _ = write!(
        h,
        "</ol>\n<p id=\"conn\">as of {} UTC; <a href=\"/status\">/status</a> (JSON) · \
         <a href=\"/metrics\">/metrics</a> (Prometheus) · <a href=\"/health\">/health</a></p>\n\
         </main>\n<script>{SCRIPT}</script>\n</body></html>\n",
        crate::metrics::human::clock_of_day(crate::metrics::unix_now())
    );
    h
}

/// Text made safe inside HTML elements and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{SinkKind, SourceKind};
    use crate::metrics::Metrics;

    #[test]
    fn the_page_holds_every_figure_and_escapes_what_it_shows() {
        let m = Metrics::new("orders", SourceKind::Csv, SinkKind::File);
        m.describe("CSV <in>.csv".into(), "out \"x\".jsonl".into());
        let page = render(&m.status());
        for (key, _) in FIGURES {
            assert!(page.contains(&format!("id=\"{key}\"")), "{key}");
        }
        assert!(page.contains("CSV &lt;in&gt;.csv → out &quot;x&quot;.jsonl"));
        assert!(!page.contains("<in>"));
        assert!(!page.contains("src=\"http"), "nothing from elsewhere");
        assert!(!page.contains("href=\"http"), "nothing from elsewhere");
    }
}
