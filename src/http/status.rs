//! The HTTP engine's part of the status page: connection and request counters, and every
//! app's routes with their upstreams' health. Builds strings; no IO.

use std::fmt::Write as _;
use std::time::Instant;

use super::engine::Engine;
use super::select::Availability;
use crate::status::{esc_html, esc_json};

fn availability(a: Availability) -> &'static str {
    match a {
        Availability::Up => "up",
        Availability::Ejected => "ejected",
        Availability::Down => "down",
    }
}

/// Appends the HTTP section of the HTML page.
pub fn html(engine: &Engine, s: &mut String) {
    let st = &engine.stats;
    let r = &st.responses;
    let _ = write!(
        s,
        "<h2>HTTP</h2><p>{} open connections, {} total, {} refused; {} requests; responses \
         1xx {} 2xx {} 3xx {} 4xx {} 5xx {}; {} bytes in, {} out</p>",
        st.connections_active.get(),
        st.connections_total.get(),
        st.connections_refused.get(),
        st.requests.get(),
        r[0].get(),
        r[1].get(),
        r[2].get(),
        r[3].get(),
        r[4].get(),
        st.bytes_in.get(),
        st.bytes_out.get()
    );
    let now = Instant::now();
    for (app, routes) in engine.plan.apps.iter().zip(&engine.routes) {
        let _ = write!(
            s,
            "<h3>app {} ({})</h3><table><tr><th>path</th><th>upstream</th><th>health</th><th>requests</th><th>failures</th><th>idle</th><th>last error</th></tr>",
            esc_html(&app.name),
            esc_html(&app.server_name)
        );
        for (route, state) in app.routes.iter().zip(routes) {
            let path = esc_html(route.path.as_deref().unwrap_or("/"));
            if state.builtin.is_some() {
                let _ = write!(s, "<tr><td>{path}</td><td>built-in status page</td></tr>");
            }
            for u in &state.upstreams {
                let h = u.health.borrow();
                let _ = write!(
                    s,
                    "<tr><td>{path}</td><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc_html(&u.target.to_string()),
                    if u.tls { " (tls)" } else { "" },
                    availability(h.availability(now)),
                    u.requests.get(),
                    u.failures.get(),
                    u.idle(),
                    esc_html(h.last_error().unwrap_or("-"))
                );
            }
        }
        s.push_str("</table>");
    }
}

/// Appends `,"http":{…},"apps":[…]` to the JSON object being built.
pub fn json(engine: &Engine, s: &mut String) {
    let st = &engine.stats;
    let r = &st.responses;
    let _ = write!(
        s,
        ",\"http\":{{\"connections_open\":{},\"connections_total\":{},\"connections_refused\":{},\"requests\":{},\"responses\":{{\"1xx\":{},\"2xx\":{},\"3xx\":{},\"4xx\":{},\"5xx\":{}}},\"bytes_in\":{},\"bytes_out\":{}}},\"apps\":[",
        st.connections_active.get(),
        st.connections_total.get(),
        st.connections_refused.get(),
        st.requests.get(),
        r[0].get(),
        r[1].get(),
        r[2].get(),
        r[3].get(),
        r[4].get(),
        st.bytes_in.get(),
        st.bytes_out.get()
    );
    let now = Instant::now();
    let apps: Vec<String> = engine
        .plan
        .apps
        .iter()
        .zip(&engine.routes)
        .map(|(app, routes)| {
            let routes: Vec<String> = app
                .routes
                .iter()
                .zip(routes)
                .map(|(route, state)| {
                    let ups: Vec<String> = state
                        .upstreams
                        .iter()
                        .map(|u| {
                            let h = u.health.borrow();
                            format!(
                                "{{\"location\":\"{}\",\"tls\":{},\"health\":\"{}\",\"requests\":{},\"failures\":{},\"idle_connections\":{},\"last_error\":{}}}",
                                esc_json(&u.target.to_string()),
                                u.tls,
                                availability(h.availability(now)),
                                u.requests.get(),
                                u.failures.get(),
                                u.idle(),
                                h.last_error().map_or("null".to_owned(), |e| format!("\"{}\"", esc_json(e)))
                            )
                        })
                        .collect();
                    format!(
                        "{{\"path\":\"{}\",\"replace_path\":{},\"load_balance\":\"{}\",\"builtin\":{},\"upstreams\":[{}]}}",
                        esc_json(route.path.as_deref().unwrap_or("/")),
                        route.replace_path.as_deref().map_or("null".to_owned(), |p| format!("\"{}\"", esc_json(p))),
                        route.balance.name(),
                        if state.builtin.is_some() { "\"status\"" } else { "null" },
                        ups.join(",")
                    )
                })
                .collect();
            format!(
                "{{\"name\":\"{}\",\"server_name\":\"{}\",\"routes\":[{}]}}",
                esc_json(&app.name),
                esc_json(&app.server_name),
                routes.join(",")
            )
        })
        .collect();
    s.push_str(&apps.join(","));
    s.push(']');
}
