//! Stored ACL policies and the compiled-ACL cache.
//!
//! Policies live at `sys/policy/<name>` as their raw text. `root` and `response-wrapping` are
//! built in and immutable; `default` is created on first start and may be edited but not deleted.
//! ACLs are compiled once per distinct policy set and cached until any policy changes, so a policy
//! edit takes effect for existing tokens on their next request.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::error::{Error, Result};
use crate::policy::builtin::{DEFAULT_POLICY, RESPONSE_WRAPPING_POLICY};
use crate::policy::{Acl, Policy, parse_policy};
use crate::storage::Storage;
use crate::telemetry;

#[derive(Debug, Serialize, Deserialize)]
struct StoredPolicy {
    name: String,
    policy: String,
}

/// The policy store.
pub struct PolicyStore {
    storage: Storage,
    policies: RwLock<HashMap<String, Arc<Policy>>>,
    acls: RwLock<HashMap<Vec<String>, Arc<Acl>>>,
    /// Bumped (under the `acls` lock) on every policy change, so that an ACL compiled from
    /// policies that changed meanwhile is never cached.
    generation: AtomicU64,
    response_wrapping: Arc<Policy>,
}

fn lock_err() -> Error {
    Error::internal("policy cache lock poisoned")
}

impl PolicyStore {
    /// A store over `storage`; nothing is read until `load` (at unseal).
    pub fn new(storage: Storage) -> Result<Self> {
        let response_wrapping = Arc::new(
            parse_policy("response-wrapping", RESPONSE_WRAPPING_POLICY).map_err(Error::internal)?,
        );
        Ok(PolicyStore {
            storage,
            policies: RwLock::new(HashMap::new()),
            acls: RwLock::new(HashMap::new()),
            generation: AtomicU64::new(0),
            response_wrapping,
        })
    }

    /// Loads every stored policy, creating `default` on first start.
    pub async fn load(&self) -> Result<()> {
        if self.storage.get("default").await?.is_none() {
            self.put("default", DEFAULT_POLICY).await?;
        }
        let mut loaded = HashMap::new();
        for name in self.storage.list("").await? {
            if let Some(p) = self.storage.get_json::<StoredPolicy>(&name).await? {
                let parsed = parse_policy(&p.name, &p.policy).map_err(Error::internal)?;
                loaded.insert(p.name, Arc::new(parsed));
            }
        }
        *self.policies.write().map_err(|_| lock_err())? = loaded;
        self.invalidate()
    }

    /// Forgets everything cached (at seal).
    pub fn clear(&self) -> Result<()> {
        self.policies.write().map_err(|_| lock_err())?.clear();
        self.invalidate()
    }

    /// Normalises a policy name as Vault does (trim, lower-case). Request paths reach the
    /// backend already in this form (the sys path table declares the name capture).
    pub fn normalize(name: &str) -> String {
        crate::logical::NameForm::TrimLower.apply(name)
    }

    /// A stored or built-in policy (`vault.policy.get_policy`; the per-request ACL comes from
    /// the cache and reads no policy).
    pub fn get(&self, name: &str) -> Result<Option<Arc<Policy>>> {
        let _timer = telemetry::Timer::named(telemetry::POLICY_GET);
        if name == "response-wrapping" {
            return Ok(Some(self.response_wrapping.clone()));
        }
        Ok(self
            .policies
            .read()
            .map_err(|_| lock_err())?
            .get(name)
            .cloned())
    }

    /// Names of the stored policies, sorted (without `root` and `response-wrapping`).
    pub fn names(&self) -> Result<Vec<String>> {
        let _timer = telemetry::Timer::named(telemetry::POLICY_LIST);
        let mut names: Vec<String> = self
            .policies
            .read()
            .map_err(|_| lock_err())?
            .keys()
            .cloned()
            .collect();
        names.sort();
        Ok(names)
    }

    /// Parses and stores a policy (create or replace).
    pub async fn put(&self, name: &str, text: &str) -> Result<()> {
        let _timer = telemetry::Timer::named(telemetry::POLICY_SET);
        match name {
            "root" => return Err(Error::bad("cannot update \"root\" policy")),
            "response-wrapping" => {
                return Err(Error::bad("cannot update \"response-wrapping\" policy"));
            }
            _ => {}
        }
        let parsed = parse_policy(name, text)
            .map_err(|e| Error::bad(format!("failed to parse policy: {e}")))?;
        self.storage
            .put_json(
                name,
                &StoredPolicy {
                    name: name.to_string(),
                    policy: text.to_string(),
                },
            )
            .await?;
        self.policies
            .write()
            .map_err(|_| lock_err())?
            .insert(name.to_string(), Arc::new(parsed));
        self.invalidate()?;
        Ok(())
    }

    /// Deletes a policy (no error when absent).
    pub async fn delete(&self, name: &str) -> Result<()> {
        let _timer = telemetry::Timer::named(telemetry::POLICY_DELETE);
        match name {
            "root" => return Err(Error::bad("cannot delete \"root\" policy")),
            "default" => return Err(Error::bad("cannot delete default policy")),
            "response-wrapping" => {
                return Err(Error::bad("cannot delete \"response-wrapping\" policy"));
            }
            _ => {}
        }
        self.storage.delete(name).await?;
        self.policies.write().map_err(|_| lock_err())?.remove(name);
        self.invalidate()?;
        Ok(())
    }

    fn invalidate(&self) -> Result<()> {
        let mut acls = self.acls.write().map_err(|_| lock_err())?;
        self.generation.fetch_add(1, Ordering::SeqCst);
        acls.clear();
        Ok(())
    }

    /// The ACL of a policy list compiled from the policies as stored now, touching no cache
    /// (an HA standby, which holds none, checks a token's access with it).
    pub async fn acl_from_storage(&self, names: &[String]) -> Result<Acl> {
        if names.iter().any(|n| n == "root") {
            return Ok(Acl::root());
        }
        let mut loaded = Vec::with_capacity(names.len());
        for n in names {
            if n == "response-wrapping" {
                loaded.push(self.response_wrapping.clone());
            } else if let Some(p) = self.storage.get_json::<StoredPolicy>(n).await? {
                // Unknown policy names are skipped, as Vault does.
                loaded.push(Arc::new(
                    parse_policy(&p.name, &p.policy).map_err(Error::internal)?,
                ));
            }
        }
        Acl::new(&loaded).map_err(Error::internal)
    }

    /// The compiled ACL for a token's policy list (cached per policy set).
    pub fn acl_for(&self, names: &[String]) -> Result<Arc<Acl>> {
        if let Some(acl) = self.acls.read().map_err(|_| lock_err())?.get(names) {
            return Ok(acl.clone());
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let acl = if names.iter().any(|n| n == "root") {
            Acl::root()
        } else {
            let mut loaded = Vec::with_capacity(names.len());
            for n in names {
                // Unknown policy names are skipped, as Vault does.
                if let Some(p) = self.get(n)? {
                    loaded.push(p);
                }
            }
            Acl::new(&loaded).map_err(Error::internal)?
        };
        let acl = Arc::new(acl);
        let mut acls = self.acls.write().map_err(|_| lock_err())?;
        if self.generation.load(Ordering::SeqCst) == generation {
            acls.insert(names.to_vec(), acl.clone());
        }
        Ok(acl)
    }
}
