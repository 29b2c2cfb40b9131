//! The environment's connection graph: who talks to whom, on which ports, and why.
//!
//! Every edge is a [`Flow`] a component declares through its `flows` hook, built from the same
//! values that wire it to its peers (the Service names and ports its configuration points at),
//! so a changed port or a removed reference changes the graph with it. The `security` component
//! turns the graph into NetworkPolicies behind a default-deny; `ehs graph` prints it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::components::{App, ALL};
use crate::resolve::Platform;

pub type Labels = BTreeMap<String, String>;

/// One end of a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// Pods selected by labels (every pod of the namespace when `labels` is empty).
    Pods {
        /// A short name for the graph and for policy names, e.g. `kafka`.
        name: String,
        /// `None`: the environment's namespace.
        namespace: Option<String>,
        labels: Labels,
        /// The operator that creates these pods when no rendered object carries their
        /// template (validation cannot match the labels against a template then).
        created_by: Option<String>,
    },
    /// Addresses outside the cluster's pod network (devices, the Kubernetes API server).
    Addresses { name: String, cidrs: Vec<String> },
}

impl Peer {
    /// The pods of one of the environment's applications.
    pub fn app(app: &App) -> Peer {
        Peer::Pods {
            name: app.name.to_owned(),
            namespace: None,
            labels: app.selector_labels(),
            created_by: None,
        }
    }

    /// Pods of the environment's namespace selected by `labels`.
    pub fn pods(name: &str, labels: Labels) -> Peer {
        Peer::Pods {
            name: name.to_owned(),
            namespace: None,
            labels,
            created_by: None,
        }
    }

    /// Pods of the environment's namespace an operator creates, selected by `labels`.
    pub fn created_by(operator: &str, name: &str, labels: Labels) -> Peer {
        Peer::Pods {
            name: name.to_owned(),
            namespace: None,
            labels,
            created_by: Some(operator.to_owned()),
        }
    }

    /// Pods of another namespace (every pod there when `labels` is empty).
    pub fn in_namespace(name: &str, namespace: &str, labels: Labels) -> Peer {
        Peer::Pods {
            name: name.to_owned(),
            namespace: Some(namespace.to_owned()),
            labels,
            created_by: None,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Peer::Pods { name, .. } | Peer::Addresses { name, .. } => name,
        }
    }

    /// How the graph shows it: `name`, `namespace/name` for pods of another namespace.
    pub fn label(&self, environment_namespace: &str) -> String {
        match self {
            Peer::Pods {
                name,
                namespace: Some(namespace),
                ..
            } if namespace != environment_namespace => format!("{namespace}/{name}"),
            Peer::Pods { name, .. } => name.clone(),
            Peer::Addresses { name, cidrs } => format!("{name} ({})", cidrs.join(", ")),
        }
    }

    /// The namespace its pods run in, if it is pods.
    pub fn namespace<'a>(&'a self, environment_namespace: &'a str) -> Option<&'a str> {
        match self {
            Peer::Pods { namespace, .. } => {
                Some(namespace.as_deref().unwrap_or(environment_namespace))
            }
            Peer::Addresses { .. } => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub const fn k8s(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Port {
    pub number: u16,
    pub protocol: Protocol,
}

impl std::fmt::Display for Port {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let protocol = match self.protocol {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        };
        write!(f, "{protocol}/{}", self.number)
    }
}

pub const fn tcp(number: u16) -> Port {
    Port {
        number,
        protocol: Protocol::Tcp,
    }
}

/// Connections `from` may open to `to` on `ports`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    pub from: Peer,
    pub to: Peer,
    pub ports: Vec<Port>,
    /// The Service (or host) the client is configured with, when it has one: the reference the
    /// flow is derived from. `ehs validate` checks that every Service a component references has
    /// a flow of that component naming it.
    pub via: Option<String>,
    /// Why the connection exists, in a few words.
    pub purpose: String,
}

impl Flow {
    pub fn new(from: Peer, to: Peer, ports: Vec<Port>, purpose: &str) -> Flow {
        Flow {
            from,
            to,
            ports,
            via: None,
            purpose: purpose.to_owned(),
        }
    }

    /// The same flow, going through the Service `service`.
    pub fn via(mut self, service: impl Into<String>) -> Flow {
        self.via = Some(service.into());
        self
    }
}

/// A flow and the component that declared it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    pub component: &'static str,
    pub flow: Flow,
}

/// Every flow of one environment, in component build order.
#[derive(Debug, Clone)]
pub struct Graph {
    pub namespace: String,
    pub edges: Vec<Edge>,
}

pub fn graph(platform: &Platform) -> Graph {
    let edges = ALL
        .iter()
        .flat_map(|component| {
            (component.flows)(platform).into_iter().map(|flow| Edge {
                component: component.name,
                flow,
            })
        })
        .collect();
    Graph {
        namespace: platform.environment.namespace.to_string(),
        edges,
    }
}

fn ports_text(ports: &[Port]) -> String {
    ports
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

impl Graph {
    /// One line per flow: `from -> to  ports  via  [component] purpose`.
    pub fn text(&self) -> String {
        let rows: Vec<[String; 5]> = self
            .edges
            .iter()
            .map(|edge| {
                let flow = &edge.flow;
                [
                    flow.from.label(&self.namespace),
                    flow.to.label(&self.namespace),
                    ports_text(&flow.ports),
                    flow.via
                        .as_ref()
                        .map_or_else(String::new, |via| format!("via {via}")),
                    format!("[{}] {}", edge.component, flow.purpose),
                ]
            })
            .collect();
        let width = |column: usize| {
            rows.iter()
                .map(|row| row[column].chars().count())
                .max()
                .unwrap_or(0)
        };
        let widths = [width(0), width(1), width(2), width(3)];
        let mut text = format!(
            "# connection graph of namespace {}: everything else is denied\n",
            self.namespace
        );
        for [from, to, ports, via, why] in rows {
            let _ = writeln!(
                text,
                "{from:w0$} -> {to:w1$}  {ports:w2$}  {via:w3$}  {why}",
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2],
                w3 = widths[3],
            );
        }
        text
    }

    /// Graphviz DOT: pods as boxes, outside addresses as ellipses, one edge per flow labelled
    /// with its ports.
    pub fn dot(&self) -> String {
        let quoted =
            |text: &str| format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""));
        let mut nodes: BTreeMap<String, &'static str> = BTreeMap::new();
        for edge in &self.edges {
            for peer in [&edge.flow.from, &edge.flow.to] {
                let shape = match peer {
                    Peer::Pods { .. } => "box",
                    Peer::Addresses { .. } => "ellipse",
                };
                nodes.insert(peer.label(&self.namespace), shape);
            }
        }
        let mut dot = format!("digraph {} {{\n  rankdir=LR;\n", quoted(&self.namespace));
        for (node, shape) in &nodes {
            let _ = writeln!(dot, "  {} [shape={shape}];", quoted(node));
        }
        for edge in &self.edges {
            let flow = &edge.flow;
            let _ = writeln!(
                dot,
                "  {} -> {} [label={}, tooltip={}];",
                quoted(&flow.from.label(&self.namespace)),
                quoted(&flow.to.label(&self.namespace)),
                quoted(&ports_text(&flow.ports)),
                quoted(&format!("[{}] {}", edge.component, flow.purpose)),
            );
        }
        dot.push_str("}\n");
        dot
    }
}
