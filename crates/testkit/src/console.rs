//! A managers' console user over plain HTTP: signs in through the login form (its
//! double-submit token included), keeps the session cookie, reads the CSRF token off the pages
//! and posts forms as the browser would. Redirects are not followed, so a test sees each 303
//! and where it points.

use crate::app::TestApp;

pub struct ConsoleUser {
    pub http: reqwest::Client,
    base: String,
    /// `name=value` pairs sent as `Cookie`.
    pub cookies: Vec<(String, String)>,
    /// The session's CSRF token, read off the last page that had one.
    pub csrf: String,
}

/// One answer: status, `Location`, `Set-Cookie` values and body.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub set_cookies: Vec<String>,
    pub body: String,
}

/// The value of the first `name="csrf"` field of a page.
pub fn csrf_of(html: &str) -> Option<String> {
    let at = html.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    let end = html[at..].find('"')?;
    Some(html[at..at + end].to_string())
}

impl ConsoleUser {
    /// A browser that has not signed in.
    pub fn new(app: &TestApp) -> ConsoleUser {
        ConsoleUser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("an HTTP client"),
            base: app.url(""),
            cookies: Vec::new(),
            csrf: String::new(),
        }
    }

    /// Sign in as `name`; panics unless the console takes the password.
    pub async fn signed_in(app: &TestApp, name: &str, password: &str) -> ConsoleUser {
        let mut user = ConsoleUser::new(app);
        let page = user.login(name, password).await;
        assert_eq!(page.status, 303, "signing in as {name}: {}", page.body);
        assert_eq!(page.location.as_deref(), Some("/console/inbox"));
        let inbox = user.get("/console/inbox").await;
        assert_eq!(inbox.status, 200, "{}", inbox.body);
        user
    }

    /// Open the login page and send its form.
    pub async fn login(&mut self, name: &str, password: &str) -> Page {
        let form = self.get("/console/login").await;
        let token = csrf_of(&form.body).unwrap_or_default();
        self.post_raw(
            "/console/login",
            &[("csrf", &token), ("name", name), ("password", password)],
        )
        .await
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn read(&mut self, request: reqwest::RequestBuilder) -> Page {
        let mut request = request;
        if !self.cookies.is_empty() {
            request = request.header("Cookie", self.cookie_header());
        }
        let response = request.send().await.expect("the console answers");
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let set_cookies: Vec<String> = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_string)
            .collect();
        for c in &set_cookies {
            let pair = c.split(';').next().unwrap_or_default();
            if let Some((k, v)) = pair.split_once('=') {
                self.cookies.retain(|(name, _)| name != k);
                if !v.is_empty() && !c.contains("Max-Age=0") {
                    self.cookies.push((k.to_string(), v.to_string()));
                }
            }
        }
        let body = response.text().await.unwrap_or_default();
        if let Some(csrf) = csrf_of(&body) {
            self.csrf = csrf;
        }
        Page {
            status,
            location,
            set_cookies,
            body,
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let request = self.http.get(format!("{}{path}", self.base));
        self.read(request).await
    }

    /// POST a form with the session's CSRF token added.
    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let csrf = self.csrf.clone();
        let mut fields: Vec<(&str, &str)> = vec![("csrf", &csrf)];
        fields.extend_from_slice(form);
        self.post_raw(path, &fields).await
    }

    /// POST exactly these fields.
    pub async fn post_raw(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let request = self.http.post(format!("{}{path}", self.base)).form(form);
        self.read(request).await
    }
}
