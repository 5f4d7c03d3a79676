//! `fedmesh demo`: a two-cluster mesh on this machine. Two embedded API
//! servers (`local` and `remotecluster`) in this process, each with simulated
//! nodes in its own zone and region (a scheduler and kubelet that run pods),
//! joined with the same code as `fedmesh join --both-ways`, a controller
//! running against each, and the seeds' examples created as Deployments and
//! Services, with a kubeconfig holding one context per cluster and commands
//! to try. Beside them, the Federation v1 control plane of seeds 002/003:
//! a federation API server (as `fedmesh federation serve`) with the
//! federation controller and fedmesh's DNS server for `example.com`, both
//! clusters joined as members (as `fedmesh federation join`), and seed 002's
//! `nginx` federated to them.

mod seed;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use fedmesh_apiserver::cluster::simulation::DataPlaneOptions;
use fedmesh_apiserver::{ApiServer, ApiServerBuilder, RunningServer};
use fedmesh_controller::{ControllerConfig, Metrics};
use fedmesh_core::federation::FederationName;
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Endpoints, Namespace, Service};
use kube::api::Api;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::apply::{Applier, Kind};
use super::connect::Cluster;
use super::dns_cmd::{DnsServeOptions, DnsServing, ZoneFormArg};
use super::federation_cmd::{self, CONTEXT as FEDERATION_CONTEXT};
use super::join_cmd::{self, ClusterName, JoinOptions};
use super::runtime;
use seed::Side;

/// The demo's cluster names (kubeconfig contexts; `remotecluster` is also the
/// RemoteClusterConfiguration's name, as in seed 000).
const LOCAL: &str = "local";
const REMOTE: &str = "remotecluster";

/// The federation's name (seed 002's) and the DNS zone its names are in.
const FEDERATION: &str = "myfederation";
const DNS_ZONE: &str = "example.com";

/// How long the mesh may take to show the seeds' endpoints.
const SYNC_TIMEOUT: Duration = Duration::from_secs(30);

/// Simulated nodes per cluster.
const NODES: u32 = 2;

/// The simulated data plane of each cluster: its nodes' zone and region
/// (as in seed 002's clusters) and a pod network of its own, so that pod
/// IPs never overlap across the mesh (Calico's federation needs that).
fn data_plane(cluster: &str) -> DataPlaneOptions {
    let (zone, region, cidr) = if cluster == LOCAL {
        ("us-central1-a", "us-central1", [10, 1, 0, 0])
    } else {
        ("europe-west1-b", "europe-west1", [10, 2, 0, 0])
    };
    DataPlaneOptions {
        nodes: NODES,
        node_prefix: format!("{cluster}-node"),
        zone: zone.into(),
        region: region.into(),
        cluster_cidr: cidr.into(),
        ..DataPlaneOptions::default()
    }
}

/// Each cluster's load-balancer pool (documentation ranges, so that no
/// address is mistaken for a real one), from which the federated `nginx`
/// gets its shards' ingress addresses.
fn load_balancer_pool(cluster: &str) -> &'static str {
    if cluster == LOCAL {
        "192.0.2.0/24"
    } else {
        "198.51.100.0/24"
    }
}

/// Arguments of `fedmesh demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Keep the clusters' and the federation's state here (SQLite); a
    /// restart resumes it.
    /// Without it, state lives in memory and goes when the demo stops.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Where to write the kubeconfig with the contexts `local`,
    /// `remotecluster` and `federation` (default: kubeconfig in the data
    /// directory, or in a temporary one).
    #[arg(long, value_name = "FILE")]
    kubeconfig_out: Option<PathBuf>,
    /// Serve `local` on port N of 127.0.0.1, `remotecluster` on N+1, the
    /// federation API on N+2 and its DNS on N+3 (default: the
    /// ports of the last run with this data directory, or free ones; 0:
    /// free ones).
    #[arg(long, value_name = "N")]
    listen_base_port: Option<u16>,
    /// Where fedmesh's DNS server for the federation's zone `example.com`
    /// answers on 127.0.0.1, UDP and TCP (default: as `--listen-base-port`
    /// says; 0: a free port).
    #[arg(long, value_name = "PORT")]
    dns_port: Option<u16>,
    /// Logging of the embedded servers and the controller (stderr; default
    /// filter `error`, so the demo's own lines stay readable).
    #[command(flatten)]
    log: runtime::LogArgs,
}

impl DemoArgs {
    pub(crate) fn run(self) -> anyhow::Result<ExitCode> {
        self.log.init("error")?;
        runtime::block_on(self.demo())??;
        Ok(ExitCode::SUCCESS)
    }

    async fn demo(self) -> anyhow::Result<()> {
        let started = Instant::now();
        let (stop_tx, mut stop) = watch::channel(false);
        tokio::spawn(async move {
            runtime::shutdown_signal().await;
            stop_tx.send_replace(true);
        });
        let progress = |line: &str| {
            runtime::say(&format!(
                "[{:5.2}s] {line}",
                started.elapsed().as_secs_f64()
            ));
        };

        // Without a data directory the files go to a temporary one, removed on exit.
        let (dir, _scratch) = match &self.data_dir {
            Some(dir) => (absolute(dir)?, None),
            None => {
                let tmp = tempfile::tempdir().context("cannot create a temporary directory")?;
                (tmp.path().to_owned(), Some(tmp))
            }
        };
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create data directory {}", dir.display()))?;
        let kubeconfig_path = match &self.kubeconfig_out {
            Some(path) => absolute(path)?,
            None => dir.join("kubeconfig"),
        };
        let persistent = self.data_dir.is_some();
        progress(&format!(
            "starting clusters {LOCAL} and {REMOTE} and the federation API on 127.0.0.1 (state {})",
            if persistent {
                format!("in {}", dir.display())
            } else {
                "in memory".into()
            }
        ));

        let ports = Ports::choose(&dir, self.listen_base_port, self.dns_port, persistent);
        let state = |name: &str| persistent.then(|| dir.join(name));
        let member = |name: &'static str| {
            move |builder: ApiServerBuilder| {
                builder
                    .data_plane(data_plane(name))
                    .load_balancer_pool(load_balancer_pool(name))
            }
        };
        let local = start_server(LOCAL, ports.local, state(LOCAL), member(LOCAL)).await?;
        progress(&format!("cluster {LOCAL} serving at {}", local.url()));
        let remote = start_server(REMOTE, ports.remote, state(REMOTE), member(REMOTE)).await?;
        progress(&format!("cluster {REMOTE} serving at {}", remote.url()));
        let federation = start_server(
            FEDERATION_CONTEXT,
            ports.federation,
            state(FEDERATION_CONTEXT),
            |builder| builder,
        )
        .await?;
        progress(&format!(
            "federation {FEDERATION} API (context {FEDERATION_CONTEXT}) serving at {}",
            federation.url()
        ));
        let dns = start_dns(ports.dns)?;
        let dns_addr = dns.local_addr();
        progress(&format!(
            "DNS server for zone {DNS_ZONE} answering on {dns_addr} (UDP and TCP)"
        ));
        if persistent {
            Ports {
                local: local.addr().port(),
                remote: remote.addr().port(),
                federation: federation.addr().port(),
                dns: dns_addr.port(),
            }
            .save(&dir)?;
        }

        let kubeconfig = combined_kubeconfig(&[&local, &remote, &federation])?;
        write_private(&kubeconfig_path, &kubeconfig)?;
        let parsed = kube::config::Kubeconfig::from_yaml(&kubeconfig)
            .context("the demo's kubeconfig does not parse")?;
        let local_cluster = Cluster::from_kubeconfig(parsed.clone(), None, Some(LOCAL)).await?;
        let remote_cluster = Cluster::from_kubeconfig(parsed.clone(), None, Some(REMOTE)).await?;
        let federation_cluster =
            Cluster::from_kubeconfig(parsed, None, Some(FEDERATION_CONTEXT)).await?;

        let indent = |line: &str| {
            runtime::say(&format!(
                "[{:5.2}s]   {line}",
                started.elapsed().as_secs_f64()
            ));
        };
        let options = JoinOptions {
            namespace: "fedmesh".into(),
            token_timeout: Duration::from_secs(10),
        };
        // Both ways, as `fedmesh join --both-ways`: seed 004 federates
        // `ratings` in the second cluster too.
        for (reader, read) in [
            (&local_cluster, &remote_cluster),
            (&remote_cluster, &local_cluster),
        ] {
            join_cmd::join(
                reader,
                read,
                &ClusterName::new(&read.label)?,
                &options,
                &indent,
            )
            .await?;
            progress(&format!(
                "joined: {} reads {} (RemoteClusterConfiguration {})",
                reader.label, read.label, read.label
            ));
        }

        // Both clusters become members of the federation, as with
        // `fedmesh federation join --name local` (and `remotecluster`).
        for member in [&local_cluster, &remote_cluster] {
            federation_cmd::join(
                &federation_cluster,
                member,
                &ClusterName::new(&member.label)?,
                &options,
                &indent,
            )
            .await?;
        }
        progress(&format!(
            "joined: {LOCAL} and {REMOTE} are members of federation {FEDERATION}"
        ));

        let (controllers_stop, controllers_stopped) = watch::channel(false);
        let mut controllers = Vec::new();
        for cluster in [&local_cluster, &remote_cluster] {
            let client = cluster.client.clone();
            // A fixed identity: a restart renews its own Lease instead of
            // waiting for the last run's to expire.
            let mut config = ControllerConfig::new("fedmesh", "fedmesh-demo");
            config.renew_interval = Duration::from_secs(2);
            config.max_backoff = Duration::from_secs(2);
            let shutdown = stopped(controllers_stopped.clone());
            let label = cluster.label.clone();
            controllers.push((
                label,
                tokio::spawn(async move {
                    fedmesh_controller::run(client, config, Metrics::new(), shutdown)
                        .await
                        .map_err(anyhow::Error::from)
                }),
            ));
            progress(&format!("controller running against {}", cluster.label));
        }
        {
            let client = federation_cluster.client.clone();
            let config =
                fedmesh_controller::federation::controller_config("fedmesh", "fedmesh-demo");
            let name = FederationName::new(FEDERATION)?;
            let shutdown = stopped(controllers_stopped.clone());
            controllers.push((
                FEDERATION_CONTEXT.to_owned(),
                tokio::spawn(federation_cmd::run_control_plane(
                    client,
                    config,
                    name,
                    Some(dns),
                    shutdown,
                )),
            ));
            progress(&format!(
                "federation controller and DNS running against {FEDERATION_CONTEXT}"
            ));
        }

        let marker = dir.join("seeded");
        let seeded_now = !marker.exists();
        if seeded_now {
            create_examples(&local_cluster, &remote_cluster, &federation_cluster).await?;
            if persistent {
                std::fs::write(&marker, b"")
                    .with_context(|| format!("cannot write {}", marker.display()))?;
            }
            progress(
                "created seed 000's my-app (both clusters) and my-app-federated, \
                 seed 004's bookinfo reviews/ratings (Deployments, Services), \
                 and seed 002's nginx (Service in the federation, Deployment in each member)",
            );
        } else {
            progress(&format!(
                "resuming the examples stored in {}",
                dir.display()
            ));
        }

        let synced = async {
            wait_for_sync(&local_cluster.client, &remote_cluster.client, seeded_now).await?;
            wait_for_dns(dns_addr, seeded_now).await
        }
        .await;
        let elapsed = started.elapsed().as_secs_f64();
        match synced {
            Ok(()) => runtime::say(&format!(
                "ready in {elapsed:.2}s: the federated endpoints are in sync, and DNS answers both shards"
            )),
            Err(error) => runtime::say(&format!(
                "ready in {elapsed:.2}s, but not in sync yet: {error:#}"
            )),
        }
        print_commands(&kubeconfig_path, dns_addr.port());

        let _ = stop.wait_for(|s| *s).await;
        runtime::say("stopping");
        controllers_stop.send_replace(true);
        for (cluster, controller) in controllers {
            match tokio::time::timeout(Duration::from_secs(5), controller).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(error))) => eprintln!("controller of {cluster}: {error:#}"),
                Ok(Err(error)) => eprintln!("controller task of {cluster}: {error}"),
                Err(_) => eprintln!("controller of {cluster} did not stop within 5s"),
            }
        }
        tokio::join!(federation.shutdown(), remote.shutdown(), local.shutdown());
        runtime::say("stopped");
        Ok(())
    }
}

/// Resolves once `stop` turns true: the controllers' shutdown.
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// The listening ports of the clusters, the federation API and its DNS.
struct Ports {
    local: u16,
    remote: u16,
    federation: u16,
    dns: u16,
}

const PORTS_FILE: &str = "ports.json";

impl Ports {
    /// `--listen-base-port` if given (0: free ports), else the last run's
    /// ports when state is kept (so the written kubeconfig and the printed
    /// commands stay valid), else free ports; `--dns-port` over any of them.
    fn choose(dir: &Path, base: Option<u16>, dns: Option<u16>, persistent: bool) -> Ports {
        let ports = match base {
            Some(base) => {
                let at = |offset: u16| match base {
                    0 => 0,
                    base => base.saturating_add(offset),
                };
                Ports {
                    local: at(0),
                    remote: at(1),
                    federation: at(2),
                    dns: at(3),
                }
            }
            None => Self::saved(dir, persistent),
        };
        Ports {
            dns: dns.unwrap_or(ports.dns),
            ..ports
        }
    }

    fn saved(dir: &Path, persistent: bool) -> Ports {
        let saved = persistent
            .then(|| std::fs::read(dir.join(PORTS_FILE)).ok())
            .flatten()
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok());
        let port = |key: &str| {
            saved
                .as_ref()
                .and_then(|v| v[key].as_u64())
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or(0)
        };
        Ports {
            local: port(LOCAL),
            remote: port(REMOTE),
            federation: port(FEDERATION_CONTEXT),
            dns: port(DNS_KEY),
        }
    }

    fn save(&self, dir: &Path) -> anyhow::Result<()> {
        let path = dir.join(PORTS_FILE);
        std::fs::write(
            &path,
            json!({
                LOCAL: self.local, REMOTE: self.remote,
                FEDERATION_CONTEXT: self.federation, DNS_KEY: self.dns
            })
            .to_string(),
        )
        .with_context(|| format!("cannot write {}", path.display()))
    }
}

/// The DNS server's key in the ports file.
const DNS_KEY: &str = "dns";

/// Starts one embedded server, set up by `configure`; a remembered port
/// that is taken now falls back to a free one.
async fn start_server(
    name: &str,
    port: u16,
    data_dir: Option<PathBuf>,
    configure: impl Fn(ApiServerBuilder) -> ApiServerBuilder,
) -> anyhow::Result<RunningServer> {
    let build = |port: u16| {
        let builder = configure(
            ApiServer::builder()
                .listen(SocketAddr::from(([127, 0, 0, 1], port)))
                .context(name),
        );
        match &data_dir {
            Some(dir) => builder.data_dir(dir),
            None => builder,
        }
    };
    match build(port).start().await {
        Ok(server) => Ok(server),
        Err(fedmesh_apiserver::server::StartError::Bind { .. }) if port != 0 => {
            eprintln!("port {port} is taken; {name} uses a free one");
            build(0)
                .start()
                .await
                .with_context(|| format!("cannot start {name}"))
        }
        Err(error) => Err(error).with_context(|| format!("cannot start {name}")),
    }
}

/// Starts the federation's DNS server on 127.0.0.1 (as `fedmesh federation
/// serve --dns-zone example.com` does); a port that is taken falls back to
/// a free one, as the clusters' do.
fn start_dns(port: u16) -> anyhow::Result<DnsServing> {
    let start = |port: u16| {
        let (options, _) = DnsServeOptions::for_zone(
            FEDERATION,
            DNS_ZONE,
            SocketAddr::from(([127, 0, 0, 1], port)),
            fedmesh_core::dns::DEFAULT_TTL,
            ZoneFormArg::ZoneOnly,
        )?;
        options.start()
    };
    match start(port) {
        Ok(dns) => Ok(dns),
        Err(error) if port != 0 => {
            eprintln!("DNS port {port}: {error:#}; the DNS server uses a free one");
            start(0)
        }
        Err(error) => Err(error),
    }
}

/// One kubeconfig with every server's cluster, user and context.
fn combined_kubeconfig(servers: &[&RunningServer]) -> anyhow::Result<String> {
    let mut doc = json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [], "users": [], "contexts": [],
        "current-context": LOCAL, "preferences": {}
    });
    for server in servers {
        let one: Value = serde_saphyr::from_str(server.kubeconfig().text())
            .context("an embedded server wrote an unreadable kubeconfig")?;
        for key in ["clusters", "users", "contexts"] {
            if let (Some(all), Some(items)) = (doc[key].as_array_mut(), one[key].as_array()) {
                all.extend(items.iter().cloned());
            }
        }
    }
    serde_saphyr::to_string(&doc).context("cannot write the kubeconfig")
}

/// Writes a file only its owner can read (kubeconfigs may hold credentials).
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot restrict {}", path.display()))?;
    }
    Ok(())
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("cannot resolve {}", path.display()))
}

/// Creates the seeds' namespaces, Services and the Deployments behind them,
/// and seed 002's federated Service in the federation.
async fn create_examples(
    local: &Cluster,
    remote: &Cluster,
    federation: &Cluster,
) -> anyhow::Result<()> {
    let quiet = |_: &str| {};
    let local = Applier::new(local.client.clone(), format!("local {LOCAL}"), &quiet);
    let remote = Applier::new(remote.client.clone(), format!("remote {REMOTE}"), &quiet);
    let federation = Applier::new(
        federation.client.clone(),
        format!("federation {FEDERATION}"),
        &quiet,
    );
    let on = |side: Side| match side {
        Side::Local => &local,
        Side::Remote => &remote,
    };
    let namespace =
        |ns: &str| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
    for applier in [&local, &remote] {
        for ns in seed::NAMESPACES {
            applier
                .ensure_quietly(&Kind::cluster::<Namespace>(), namespace(ns))
                .await?;
        }
    }
    for service in seed::services() {
        on(service.side)
            .ensure_quietly(&Kind::namespaced::<Service>(), service.object)
            .await?;
    }
    for backend in seed::backends() {
        on(backend.side)
            .ensure_quietly(&Kind::namespaced::<Deployment>(), backend.deployment())
            .await?;
    }
    federation
        .ensure_quietly(
            &Kind::cluster::<Namespace>(),
            namespace(seed::FEDERATED_NAMESPACE),
        )
        .await?;
    federation
        .ensure_quietly(&Kind::namespaced::<Service>(), seed::federated_nginx())
        .await?;
    Ok(())
}

/// Waits (bounded) until the pods run and the controller has written what
/// the seeds lead to: the expected address counts on a fresh start, any
/// endpoints on a resume (the user may have scaled things since).
async fn wait_for_sync(
    local: &kube::Client,
    remote: &kube::Client,
    exact: bool,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + SYNC_TIMEOUT;
    loop {
        let mut missing = Vec::new();
        for (side, ns, name, want) in seed::EXPECTED {
            let client = match side {
                Side::Local => local,
                Side::Remote => remote,
            };
            let have = Api::<Endpoints>::namespaced(client.clone(), ns)
                .get_opt(name)
                .await
                .ok()
                .flatten()
                .map(|e| address_count(&e));
            let ok = match have {
                Some(have) => !exact || have == *want,
                None => false,
            };
            if !ok {
                let cluster = match side {
                    Side::Local => LOCAL,
                    Side::Remote => REMOTE,
                };
                missing.push(format!(
                    "{cluster} {ns}/{name} has {} addresses, expected {want}",
                    have.unwrap_or(0)
                ));
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "after {}s: {}",
            SYNC_TIMEOUT.as_secs(),
            missing.join("; ")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The federated nginx's name in the federation's DNS: the global name,
/// or that of a zone or region (`scope`).
fn nginx_name(scope: Option<&str>) -> String {
    let scope = scope.map(|s| format!("{s}.")).unwrap_or_default();
    format!(
        "nginx.{}.{FEDERATION}.svc.{scope}{DNS_ZONE}",
        seed::FEDERATED_NAMESPACE
    )
}

/// Waits (bounded) until the DNS server answers the federated nginx's
/// global name with both members' ingress addresses (on a resume: with
/// any, the user may have scaled nginx since), asking it over UDP as dig
/// would.
async fn wait_for_dns(server: SocketAddr, exact: bool) -> anyhow::Result<()> {
    let name = nginx_name(None);
    let want = 2;
    let deadline = tokio::time::Instant::now() + SYNC_TIMEOUT;
    loop {
        let have = query_a(server, &name).await;
        let count = have.as_ref().map_or(0, Vec::len);
        if count == want || (!exact && count > 0) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            let answer = match have {
                Ok(addresses) => format!("{} addresses", addresses.len()),
                Err(error) => format!("no answer ({error:#})"),
            };
            anyhow::bail!(
                "after {}s: {name} has {answer} at {server}, expected {want}",
                SYNC_TIMEOUT.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The addresses `server` answers for `name`'s A question.
async fn query_a(server: SocketAddr, name: &str) -> anyhow::Result<Vec<Ipv4Addr>> {
    let mut qname = Name::from_ascii(name).context("the query name")?;
    qname.set_fqdn(true);
    let mut query = Message::new(0x4644, MessageType::Query, OpCode::Query);
    query.add_query(Query::query(qname, RecordType::A));
    let bytes = query.to_vec().context("encoding the query")?;
    let socket = tokio::net::UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .context("binding a UDP socket")?;
    socket
        .send_to(&bytes, server)
        .await
        .context("sending the query")?;
    let mut buf = vec![0; 4096];
    let len = tokio::time::timeout(Duration::from_secs(1), socket.recv(&mut buf))
        .await
        .context("no answer within 1s")?
        .context("receiving the answer")?;
    let answer = Message::from_vec(&buf[..len]).context("decoding the answer")?;
    Ok(answer
        .answers
        .iter()
        .filter_map(|record| match &record.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect())
}

fn address_count(endpoints: &Endpoints) -> usize {
    endpoints
        .subsets
        .iter()
        .flatten()
        .map(|s| {
            s.addresses.as_ref().map_or(0, Vec::len)
                + s.not_ready_addresses.as_ref().map_or(0, Vec::len)
        })
        .sum()
}

/// Prints commands that work exactly as printed.
fn print_commands(kubeconfig: &Path, dns_port: u16) {
    let k = format!("kubectl --kubeconfig {}", shell_quote(kubeconfig));
    let dig = format!("dig @127.0.0.1 -p {dns_port} +short");
    let ns = seed::FEDERATED_NAMESPACE;
    let local_zone = data_plane(LOCAL).zone;
    let local_region = data_plane(LOCAL).region;
    let zone_name = nginx_name(Some(&local_zone));
    let lines = [
        "# the federated endpoints: the local pod, and the remote one as remotecluster/<pod>; only the my-app-ui port".to_owned(),
        format!("{k} --context {LOCAL} get endpoints my-app-federated -o yaml"),
        "# the remote cluster as the controller sees it (State InSync)".to_owned(),
        format!("{k} --context {LOCAL} get remoteclusterconfigurations"),
        "# bookinfo: reviews has 3 endpoints (reviews-v1 here, reviews-v2 and v3 in remotecluster), ratings 1".to_owned(),
        format!(
            "{k} --context {LOCAL} -n bookinfo get endpoints -o 'custom-columns=NAME:.metadata.name,ADDRESSES:.subsets[*].addresses[*].ip'"
        ),
        "# the join goes both ways: remotecluster's federated ratings holds local's ratings pod as local/<pod>".to_owned(),
        format!(
            "{k} --context {REMOTE} -n bookinfo get endpoints ratings -o 'custom-columns=NAME:.metadata.name,ADDRESSES:.subsets[*].addresses[*].ip,PODS:.subsets[*].addresses[*].targetRef.name'"
        ),
        "# the pods run on simulated nodes, with IPs from their node's pod network".to_owned(),
        format!("{k} --context {REMOTE} get pods -A -o wide"),
        "# scale the remote my-app Deployment to zero ...".to_owned(),
        format!("{k} --context {REMOTE} -n default scale deployment my-app --replicas=0"),
        "# ... the federated endpoints now hold only the local pod ...".to_owned(),
        format!(
            "{k} --context {LOCAL} get endpoints my-app-federated -o 'custom-columns=NAME:.metadata.name,ADDRESSES:.subsets[*].addresses[*].ip,PODS:.subsets[*].addresses[*].targetRef.name'"
        ),
        "# ... and bring it back".to_owned(),
        format!("{k} --context {REMOTE} -n default scale deployment my-app --replicas=1"),
        format!("# the federation {FEDERATION}: both clusters are members, Ready, with their zones and regions"),
        format!("{k} --context {FEDERATION_CONTEXT} get clusters"),
        "# nginx, created in the federation and propagated to both: annotation federation.fedmesh.io/shards holds each member's healthy shard and its load-balancer address".to_owned(),
        format!("{k} --context {FEDERATION_CONTEXT} -n {ns} get service nginx -o yaml"),
        "# fedmesh's DNS answers both shards' addresses for the global name ...".to_owned(),
        format!("{dig} {}", nginx_name(None)),
        format!("# ... and {LOCAL}'s alone for its zone {local_zone}"),
        format!("{dig} {zone_name}"),
        format!("# fail {LOCAL}'s shard over: no nginx pod left there ..."),
        format!("{k} --context {LOCAL} -n {ns} scale deployment nginx --replicas=0"),
        format!(
            "# ... the zone name becomes a CNAME to the region {local_region}, a CNAME to the global name: {REMOTE}'s address"
        ),
        format!("{dig} {zone_name}"),
        "# ... and bring it back".to_owned(),
        format!("{k} --context {LOCAL} -n {ns} scale deployment nginx --replicas=1"),
    ];
    runtime::say("\nTry these (they work as printed):");
    for line in lines {
        runtime::say(&format!("  {line}"));
    }
    runtime::say("\nPress Ctrl-C to stop.");
}

/// `path` as one shell word.
fn shell_quote(path: &Path) -> String {
    let text = path.display().to_string();
    let plain = text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:,@".contains(&b));
    if plain && !text.is_empty() {
        text
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{Ports, shell_quote};

    fn ports(base: Option<u16>, dns: Option<u16>) -> [u16; 4] {
        let p = Ports::choose(Path::new("/nonexistent"), base, dns, false);
        [p.local, p.remote, p.federation, p.dns]
    }

    #[test]
    fn ports_follow_the_base_port_and_dns_port_overrides() {
        assert_eq!(ports(Some(7000), None), [7000, 7001, 7002, 7003]);
        assert_eq!(ports(Some(7000), Some(5353)), [7000, 7001, 7002, 5353]);
        // 0 means free ports for all, not port 1, 2 and 3.
        assert_eq!(ports(Some(0), None), [0; 4]);
        assert_eq!(ports(None, None), [0; 4]);
        assert_eq!(ports(None, Some(5353)), [0, 0, 0, 5353]);
    }

    #[test]
    fn paths_are_quoted_only_when_the_shell_needs_it() {
        assert_eq!(
            shell_quote(Path::new("/tmp/a-b/kubeconfig")),
            "/tmp/a-b/kubeconfig"
        );
        assert_eq!(shell_quote(Path::new("/tmp/a b")), "'/tmp/a b'");
        assert_eq!(shell_quote(Path::new("/tmp/it's")), r"'/tmp/it'\''s'");
    }
}
