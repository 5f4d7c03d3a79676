//! The kubeconfig a server writes for its admin.

use std::net::SocketAddr;
use std::path::Path;

use serde_json::json;

/// A kubeconfig document for one server, one user, one context.
#[derive(Debug, Clone)]
pub struct Kubeconfig {
    server: String,
    context: String,
    yaml: String,
}

impl Kubeconfig {
    /// The kubeconfig of a TLS server from its admin entry.
    pub fn tls(
        entry: &crate::auth::kubeconfig::KubeconfigEntry,
        context: &str,
    ) -> Result<Self, crate::auth::kubeconfig::KubeconfigError> {
        let yaml = crate::auth::kubeconfig::render(std::slice::from_ref(entry), context)?;
        Ok(Kubeconfig {
            server: entry.server.clone(),
            context: context.to_owned(),
            yaml,
        })
    }

    /// A kubeconfig for a plaintext server, with the admin token.
    pub fn plaintext(context: &str, addr: SocketAddr, token: &str) -> Self {
        let server = format!("http://{addr}");
        let doc = json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": {"server": server}}],
            "users": [{"name": format!("{context}-admin"), "user": {"token": token}}],
            "contexts": [{"name": context, "context": {"cluster": context, "user": format!("{context}-admin")}}],
            "current-context": context,
            "preferences": {},
        });
        // JSON is YAML, and every kubeconfig reader accepts it.
        let yaml = serde_json::to_string_pretty(&doc).unwrap_or_default();
        Kubeconfig {
            server,
            context: context.to_owned(),
            yaml,
        }
    }

    /// The server URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The context name.
    pub fn context(&self) -> &str {
        &self.context
    }

    /// The document.
    pub fn text(&self) -> &str {
        &self.yaml
    }

    /// Writes the document to `path` (mode 0600 on Unix: it holds credentials).
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, &self.yaml)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
        }
        std::fs::rename(&tmp, path)
    }
}
