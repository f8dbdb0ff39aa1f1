import EnnioEvents

/// The dashboard at `GET /`: one page of plain HTML, CSS and JavaScript, kept in the binary
/// (no build step, nothing fetched from elsewhere). It reads the same HTTP API as anyone:
/// the live feed from `/api/events/stream` (filtered by project, type and priority, coloured
/// by priority), the session and node tables from `/api/sessions` and `/api/nodes`, the
/// counts per category from `/api/stats`. Text from events is only ever set as text, never as
/// markup. With a token, the page asks for it once and keeps it in a cookie.
enum DashboardPage {
    static let bytes: [UInt8] = Array(html.utf8)

    static let typeOptions = EventType.allCases.map { #"<option value="\#($0.rawValue)">\#($0.rawValue)</option>"# }.joined(separator: "\n")
    static let priorityOptions = EventPriority.allCases.map { #"<option value="\#($0.rawValue)">\#($0.rawValue)</option>"# }.joined(separator: "\n")

    static let html = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Ennio fleet</title>
        <style>
          :root { --info: #6b7280; --action: #2563eb; --urgent: #d97706; --critical: #dc2626; --line: #e5e7eb; }
          * { box-sizing: border-box; }
          body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #111827; background: #f9fafb; }
          header { display: flex; align-items: center; gap: 1rem; padding: .75rem 1.25rem; background: #111827; color: #f9fafb; }
          header h1 { font-size: 1.1rem; margin: 0; }
          #connection { font-size: .85rem; padding: .1rem .5rem; border-radius: 1rem; background: #374151; }
          #connection.live { background: #065f46; }
          #connection.down { background: #991b1b; }
          main { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap: 1rem; padding: 1rem 1.25rem; }
          section { background: #fff; border: 1px solid var(--line); border-radius: .5rem; padding: .75rem 1rem; overflow: auto; }
          section.wide { grid-column: 1 / -1; }
          h2 { font-size: 1rem; margin: 0 0 .5rem; }
          table { width: 100%; border-collapse: collapse; }
          th, td { text-align: left; padding: .25rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
          th { font-weight: 600; color: #374151; }
          td.time, td.seen { white-space: nowrap; color: #4b5563; font-variant-numeric: tabular-nums; }
          .badge { display: inline-block; padding: 0 .4rem; border-radius: .25rem; color: #fff; font-size: .8rem; }
          tr.event { border-left: 4px solid var(--info); }
          tr.priority-info .badge { background: var(--info); }
          tr.priority-action { border-left-color: var(--action); } tr.priority-action .badge { background: var(--action); }
          tr.priority-urgent { border-left-color: var(--urgent); } tr.priority-urgent .badge { background: var(--urgent); }
          tr.priority-critical { border-left-color: var(--critical); background: #fef2f2; } tr.priority-critical .badge { background: var(--critical); }
          #filters { display: flex; flex-wrap: wrap; gap: .75rem; align-items: end; margin-bottom: .5rem; }
          #filters label { display: flex; flex-direction: column; font-size: .8rem; color: #374151; }
          #category-counts { display: flex; flex-wrap: wrap; gap: .5rem; list-style: none; margin: 0; padding: 0; }
          #category-counts li { border: 1px solid var(--line); border-radius: .375rem; padding: .25rem .6rem; }
          #category-counts .count { font-weight: 600; margin-left: .35rem; font-variant-numeric: tabular-nums; }
          .connected { color: #065f46; } .disconnected { color: #991b1b; } .terminal { color: #6b7280; }
          #auth { margin: 1rem 1.25rem; }
          .empty td { color: #6b7280; font-style: italic; }
        </style>
        </head>
        <body>
        <header><h1>Ennio fleet</h1><span id="connection">connecting…</span></header>
        <section id="auth" hidden>
          <form id="token-form">
            <label>This coordinator needs a token: <input id="token-input" type="password" autocomplete="off"></label>
            <button type="submit">Use it</button>
          </form>
        </section>
        <main>
          <section class="wide">
            <h2>Events per category <small>(stored since the coordinator started)</small></h2>
            <ul id="category-counts"></ul>
          </section>
          <section>
            <h2>Live feed</h2>
            <form id="filters">
              <label>Project <input id="filter-project" placeholder="any"></label>
              <label>Type <select id="filter-type"><option value="">any</option>
        \#(typeOptions)
              </select></label>
              <label>Priority at least <select id="filter-priority"><option value="">any</option>
        \#(priorityOptions)
              </select></label>
            </form>
            <table id="feed">
              <thead><tr><th>Time</th><th>Priority</th><th>Type</th><th>Project</th><th>Session</th><th>Message</th></tr></thead>
              <tbody id="feed-body"></tbody>
            </table>
          </section>
          <section>
            <h2>Sessions</h2>
            <table id="sessions">
              <thead><tr><th>Project</th><th>Session</th><th>Status</th><th>Last event</th><th>Events</th></tr></thead>
              <tbody id="sessions-body"></tbody>
            </table>
            <h2 style="margin-top:1rem">Nodes</h2>
            <table id="nodes">
              <thead><tr><th>Host</th><th>State</th><th>Health</th><th>Last seen</th></tr></thead>
              <tbody id="nodes-body"></tbody>
            </table>
          </section>
        </main>
        <script>
        "use strict";
        const feedLimit = 500;
        let stream = null;
        let refreshTimer = null;

        function cell(row, text, className) {
          const td = document.createElement("td");
          td.textContent = text == null ? "" : String(text);
          if (className) td.className = className;
          row.appendChild(td);
          return td;
        }

        function setStatus(text, state) {
          const badge = document.getElementById("connection");
          badge.textContent = text;
          badge.className = state || "";
        }

        function showAuth(needed) {
          document.getElementById("auth").hidden = !needed;
          if (needed) setStatus("token needed", "down");
        }

        async function api(path) {
          const response = await fetch(path, { credentials: "same-origin", cache: "no-store" });
          if (response.status === 401) { showAuth(true); throw new Error("unauthorized"); }
          showAuth(false);
          if (!response.ok) throw new Error(path + ": " + response.status);
          return response.json();
        }

        function timeOf(timestamp) {
          const date = new Date(timestamp);
          return isNaN(date) ? timestamp : date.toLocaleTimeString();
        }

        function secondsAgo(seconds) {
          if (seconds == null) return "never";
          if (seconds < 60) return seconds.toFixed(1) + " s ago";
          if (seconds < 3600) return Math.round(seconds / 60) + " min ago";
          return Math.round(seconds / 3600) + " h ago";
        }

        function addEvent(event) {
          const body = document.getElementById("feed-body");
          if (body.querySelector('tr[data-id="' + CSS.escape(event.id) + '"]')) return;
          const row = document.createElement("tr");
          row.className = "event priority-" + event.priority;
          row.dataset.id = event.id;
          row.dataset.type = event.event_type;
          row.dataset.project = event.project_id;
          cell(row, timeOf(event.timestamp), "time");
          const badge = document.createElement("span");
          badge.className = "badge";
          badge.textContent = event.priority;
          cell(row, "").appendChild(badge);
          cell(row, event.event_type, "type");
          cell(row, event.project_id, "project");
          cell(row, event.session_id, "session");
          cell(row, event.message, "message");
          body.insertBefore(row, body.firstChild);
          while (body.rows.length > feedLimit) body.deleteRow(body.rows.length - 1);
          if (event.session_id || event.event_type.startsWith("node_")) scheduleRefresh();
        }

        function streamURL() {
          const parameters = new URLSearchParams({ backlog: "100" });
          const project = document.getElementById("filter-project").value.trim();
          const type = document.getElementById("filter-type").value;
          const priority = document.getElementById("filter-priority").value;
          if (project) parameters.set("project", project);
          if (type) parameters.set("type", type);
          if (priority) parameters.set("min_priority", priority);
          return "/api/events/stream?" + parameters.toString();
        }

        function connect() {
          if (stream) stream.close();
          document.getElementById("feed-body").replaceChildren();
          stream = new EventSource(streamURL());
          stream.onopen = () => setStatus("live", "live");
          stream.onmessage = (message) => {
            try { addEvent(JSON.parse(message.data)); } catch (error) { console.error(error); }
          };
          stream.onerror = () => {
            if (stream.readyState === EventSource.CLOSED) {
              setStatus("disconnected", "down");
              // Refused (a token, a bad filter) or gone: look, then try again.
              refresh().finally(() => setTimeout(connect, 3000));
            } else {
              setStatus("reconnecting…", "down");
            }
          };
        }

        function renderSessions(sessions) {
          const body = document.getElementById("sessions-body");
          body.replaceChildren();
          for (const session of sessions) {
            const row = document.createElement("tr");
            row.className = "session" + (session.terminal ? " terminal" : "");
            row.dataset.session = session.session_id;
            row.dataset.project = session.project_id;
            cell(row, session.project_id);
            cell(row, session.session_id, "session");
            cell(row, session.status || session.last_event_type, "status");
            cell(row, timeOf(session.last_event_at), "time");
            cell(row, session.event_count);
            body.appendChild(row);
          }
          if (!sessions.length) cell(body.appendChild(Object.assign(document.createElement("tr"), { className: "empty" })), "no sessions yet");
        }

        function healthText(health) {
          if (!health || typeof health !== "object") return "";
          const parts = [];
          if (Array.isArray(health.load)) parts.push("load " + health.load.map((value) => Number(value).toFixed(2)).join(" "));
          if (typeof health.uptime_seconds === "number") parts.push("up " + Math.round(health.uptime_seconds / 3600) + " h");
          return parts.join(", ");
        }

        function renderNodes(nodes) {
          const body = document.getElementById("nodes-body");
          body.replaceChildren();
          for (const node of nodes) {
            const row = document.createElement("tr");
            row.className = "node";
            row.dataset.host = node.host;
            cell(row, node.host, "host");
            cell(row, node.connected ? "● connected" : "○ disconnected", node.connected ? "connected" : "disconnected");
            cell(row, healthText(node.health), "health");
            cell(row, secondsAgo(node.seconds_since_last_seen), "seen");
            body.appendChild(row);
          }
          if (!nodes.length) cell(body.appendChild(Object.assign(document.createElement("tr"), { className: "empty" })), "no nodes yet");
        }

        function renderCounts(stats) {
          const list = document.getElementById("category-counts");
          list.replaceChildren();
          for (const [category, count] of Object.entries(stats.stored_by_category || {})) {
            const item = document.createElement("li");
            item.dataset.category = category;
            item.textContent = category;
            const number = document.createElement("span");
            number.className = "count";
            number.textContent = String(count);
            item.appendChild(number);
            list.appendChild(item);
          }
        }

        async function refresh() {
          try {
            const [sessions, nodes, stats] = await Promise.all([api("/api/sessions"), api("/api/nodes"), api("/api/stats")]);
            renderSessions(sessions.sessions);
            renderNodes(nodes.nodes);
            renderCounts(stats);
          } catch (error) {
            console.error(error);
          }
        }

        function scheduleRefresh() {
          if (refreshTimer) return;
          refreshTimer = setTimeout(() => { refreshTimer = null; refresh(); }, 250);
        }

        document.getElementById("token-form").addEventListener("submit", (submit) => {
          submit.preventDefault();
          const token = document.getElementById("token-input").value.trim();
          document.cookie = "ennio_token=" + encodeURIComponent(token) + "; path=/; SameSite=Strict";
          refresh();
          connect();
        });
        for (const id of ["filter-project", "filter-type", "filter-priority"]) {
          document.getElementById(id).addEventListener("change", connect);
        }
        document.getElementById("filters").addEventListener("submit", (submit) => { submit.preventDefault(); connect(); });
        refresh();
        connect();
        setInterval(refresh, 2000);
        </script>
        </body>
        </html>
        """#
}
