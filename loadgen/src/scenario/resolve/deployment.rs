//! `[deployment]`: backend, instances, balancer, and the rules between them and the rest of
//! the file (an external target has no deployment of pushbench's).

use super::check::Check;
use super::section;
use crate::scenario::deployment::{Backend, Balancer, Deployment, RedisPersistence, MAX_INSTANCES};
use crate::scenario::raw::{RawDeployment, S};

pub(super) fn resolve_deployment(
    c: &mut Check,
    raw: &S<RawDeployment>,
    external_target: bool,
) -> Deployment {
    let (at, d) = section(raw);
    let mut out = Deployment::default();
    if raw.is_some() && external_target {
        c.err(
            at.clone(),
            "[deployment] describes the feed-servers pushbench starts and cannot be combined \
             with [target], which measures an external target instead",
        );
    }
    if let Some(b) = &d.backend {
        match Backend::from_name(b.get_ref()) {
            Some(backend) => out.backend = backend,
            None => c.err(
                b.span(),
                format!(
                    "unknown `deployment.backend` {:?}, expected \"memory\" or \"redis\"",
                    b.get_ref()
                ),
            ),
        }
    }
    if let Some(b) = &d.balancer {
        match Balancer::from_name(b.get_ref()) {
            Some(balancer) => out.balancer = balancer,
            None => c.err(
                b.span(),
                format!(
                    "unknown `deployment.balancer` {:?}, expected \"none\" or \"nginx\"",
                    b.get_ref()
                ),
            ),
        }
    }
    if let Some(p) = &d.redis_persistence {
        match RedisPersistence::from_name(p.get_ref()) {
            Some(persistence) => out.redis_persistence = persistence,
            None => c.err(
                p.span(),
                format!(
                    "unknown `deployment.redis_persistence` {:?}, expected \"aof\" or \"none\"",
                    p.get_ref()
                ),
            ),
        }
        if out.backend != Backend::Redis && d.backend.is_some() {
            c.err(
                p.span(),
                "`deployment.redis_persistence` applies to backend = \"redis\" only",
            );
        }
    }
    out.instances = c.integer(
        d.instances.as_ref(),
        "deployment.instances",
        1,
        1..=MAX_INSTANCES,
    );
    out.nginx_workers = c.integer(
        d.nginx_workers.as_ref(),
        "deployment.nginx_workers",
        1,
        1..=64,
    );
    if let Some(n) = &d.nginx_workers {
        if out.balancer != Balancer::Nginx {
            c.err(
                n.span(),
                "`deployment.nginx_workers` applies to balancer = \"nginx\" only",
            );
        }
    }
    if out.instances > 1 {
        let span = d.instances.as_ref().map_or(at.clone(), |i| i.span());
        if out.balancer == Balancer::None {
            c.err(
                span.clone(),
                format!(
                    "`deployment.instances` = {} needs a balancer for the clients to reach them: \
                     add balancer = \"nginx\"",
                    out.instances
                ),
            );
        }
        if out.backend == Backend::Memory {
            c.err(
                span,
                format!(
                    "`deployment.instances` = {} needs backend = \"redis\": with in-memory \
                     history each instance would hold a feed of its own",
                    out.instances
                ),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::scenario::deployment::{Backend, Balancer, Deployment, RedisPersistence};
    use crate::scenario::test_util::*;

    #[test]
    fn default_is_one_in_memory_server() {
        assert_eq!(ok(MINIMAL).deployment, Deployment::default());
    }

    #[test]
    fn full_section() {
        let sc = ok(&format!(
            "{MINIMAL}[deployment]\nbackend = \"redis\"\ninstances = 3\nbalancer = \"nginx\"\n\
             nginx_workers = 2\nredis_persistence = \"none\"\n"
        ));
        assert_eq!(
            sc.deployment,
            Deployment {
                backend: Backend::Redis,
                instances: 3,
                balancer: Balancer::Nginx,
                nginx_workers: 2,
                redis_persistence: RedisPersistence::None,
            }
        );
    }

    #[test]
    fn problems_name_the_key_and_place() {
        let msg = err(&format!("{MINIMAL}[deployment]\nbackend = \"etcd\"\n"));
        assert_diag(&msg, 10, 11, &["unknown `deployment.backend` \"etcd\""]);
        let msg = err(&format!(
            "{MINIMAL}[deployment]\nbackend = \"redis\"\ninstances = 2\n"
        ));
        assert_diag(&msg, 11, 13, &["needs a balancer", "balancer = \"nginx\""]);
        let msg = err(&format!(
            "{MINIMAL}[deployment]\ninstances = 2\nbalancer = \"nginx\"\n"
        ));
        assert_diag(&msg, 10, 13, &["needs backend = \"redis\""]);
        let msg = err(&format!("{MINIMAL}[deployment]\nnginx_workers = 2\n"));
        assert_diag(&msg, 10, 17, &["applies to balancer = \"nginx\" only"]);
        let msg = err(&format!("{MINIMAL}[deployment]\ninstances = 0\n"));
        assert_diag(&msg, 10, 13, &["`deployment.instances`"]);
    }

    #[test]
    fn a_sweep_over_the_deployment_runs_the_three() {
        let sc = ok(&format!(
            "{MINIMAL}[sweep]\nfield = \"deployment\"\nvalues = [\"memory\", \"redis\", \"nginx:2\"]\n"
        ));
        let runs = sc.expand_sweep();
        assert_eq!(runs.len(), 3);
        assert_eq!(runs[0].0.as_deref(), Some("deployment=memory"));
        assert_eq!(runs[0].1.deployment, Deployment::default());
        assert_eq!(runs[1].1.deployment.backend, Backend::Redis);
        assert_eq!(runs[2].1.deployment.instances, 2);
        assert_eq!(runs[2].1.deployment.balancer, Balancer::Nginx);
        // The keys that apply to one deployment only stay with the ones they apply to.
        let sc = ok(&format!(
            "{MINIMAL}[deployment]\nnginx_workers = 2\nbalancer = \"nginx\"\n\
             [sweep]\nfield = \"deployment\"\nvalues = [\"memory\", \"nginx:2\"]\n"
        ));
        let runs = sc.expand_sweep();
        assert_eq!(runs[0].1.deployment, Deployment::default());
        assert_eq!(runs[1].1.deployment.nginx_workers, 2);
        let msg = err(&format!(
            "{MINIMAL}[sweep]\nfield = \"deployment\"\nvalues = [\"memory\", \"k8s\"]\n"
        ));
        assert_diag(&msg, 11, 21, &["unknown deployment \"k8s\""]);
    }
}
