// The chat page: logs in through the API, keeps the token for the session, and reads and posts
// messages with it. config.json (written next to this file at deploy time) says where the API is.
"use strict";

const status = (text) => { document.getElementById("status").textContent = text; };
let api = null;

async function call(path, options = {}) {
  const headers = { "content-type": "application/json" };
  const token = sessionStorage.getItem("token");
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(api + path, { ...options, headers });
  const body = await response.json();
  if (!response.ok) throw new Error(body.message || response.statusText);
  return body;
}

async function refresh() {
  const { messages } = await call("/messages");
  const list = document.getElementById("history");
  list.replaceChildren(...messages.map((message) => {
    const item = document.createElement("li");
    const author = document.createElement("b");
    author.textContent = message.author;
    item.append(author, message.text);
    return item;
  }));
}

function showChat() {
  document.getElementById("login").hidden = true;
  document.getElementById("chat").hidden = false;
  refresh().catch((error) => status(error.message));
}

document.getElementById("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const account = { username: form.get("username"), password: form.get("password") };
  try {
    if (event.submitter && event.submitter.value === "signup") {
      await call("/signup", { method: "POST", body: JSON.stringify(account) });
    }
    const { token } = await call("/login", { method: "POST", body: JSON.stringify(account) });
    sessionStorage.setItem("token", token);
    status(`logged in as ${account.username}`);
    showChat();
  } catch (error) {
    status(error.message);
  }
});

document.getElementById("say").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = event.target.elements.text;
  try {
    await call("/messages", { method: "POST", body: JSON.stringify({ text: input.value }) });
    input.value = "";
    await refresh();
  } catch (error) {
    status(error.message);
  }
});

fetch("config.json")
  .then((response) => response.json())
  .then((config) => {
    api = config.api;
    if (sessionStorage.getItem("token")) showChat();
  })
  .catch(() => status("config.json is missing: deploy the site with the demo's drive step"));
