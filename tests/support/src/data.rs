//! The fake's data model: users, models, fields, records, ACLs and record rules,
//! plus [`Dataset::demo`], a small realistic database.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

/// One record: field name → stored JSON value. Always holds `"id"`.
///
/// Stored forms: many2one = integer id or `null`; many2many = array of ids;
/// one2many is not stored (derived from the inverse many2one); dates/datetimes
/// = `"YYYY-MM-DD"` / `"YYYY-MM-DD HH:MM:SS"` (UTC); binary = base64 string.
pub type Record = Map<String, Value>;

/// Which Odoo series the fake impersonates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OdooVersion {
    /// 16.0: no `web_read`, `web_search_read(domain, fields)`, no `specification`.
    V16,
    /// 17.0 (default).
    #[default]
    V17,
    /// 18.0: also answers `/json/2/...`, `/odoo` redirects, websocket `?version=` check.
    V18,
}

impl OdooVersion {
    /// 16, 17 or 18.
    pub fn major(self) -> i64 {
        match self {
            OdooVersion::V16 => 16,
            OdooVersion::V17 => 17,
            OdooVersion::V18 => 18,
        }
    }
    /// `"17.0"` etc.
    pub fn server_version(self) -> String {
        format!("{}.0", self.major())
    }
    /// `[17, 0, 0, "final", 0, ""]` etc.
    pub fn version_info(self) -> Value {
        json!([self.major(), 0, 0, "final", 0, ""])
    }
    /// The `common.version` / `/web/webclient/version_info` dict.
    pub fn version_dict(self) -> Value {
        json!({
            "server_version": self.server_version(),
            "server_version_info": self.version_info(),
            "server_serie": self.server_version(),
            "protocol_version": 1,
        })
    }
}

/// A login-capable user.
#[derive(Clone, Debug)]
pub struct User {
    pub uid: i64,
    pub login: String,
    pub password: String,
    /// Accepted wherever a password is (RPC) and as `Authorization: bearer` on `/json/2`.
    pub api_keys: Vec<String>,
    pub name: String,
    /// Admins bypass ACLs and record rules in the fake.
    pub is_admin: bool,
    /// Group xml ids, e.g. `"sales_team.group_sale_salesman"`.
    pub groups: Vec<String>,
    pub company_ids: Vec<i64>,
    /// The user's `res.partner` id (session_info `partner_id`).
    pub partner_id: i64,
    pub lang: String,
    pub tz: String,
}

impl User {
    /// A non-admin internal user (group `base.group_user`, company 1).
    pub fn new(uid: i64, login: &str, password: &str, name: &str) -> User {
        User {
            uid,
            login: login.to_string(),
            password: password.to_string(),
            api_keys: Vec::new(),
            name: name.to_string(),
            is_admin: false,
            groups: vec!["base.group_user".to_string()],
            company_ids: vec![1],
            partner_id: 0,
            lang: "en_US".to_string(),
            tz: "Europe/Brussels".to_string(),
        }
    }
    pub fn admin(mut self) -> Self {
        self.is_admin = true;
        self.groups.push("base.group_system".to_string());
        self.groups.push("base.group_erp_manager".to_string());
        self
    }
    pub fn api_key(mut self, key: &str) -> Self {
        self.api_keys.push(key.to_string());
        self
    }
    pub fn group(mut self, g: &str) -> Self {
        self.groups.push(g.to_string());
        self
    }
    pub fn partner(mut self, partner_id: i64) -> Self {
        self.partner_id = partner_id;
        self
    }
    /// True when `secret` is the password or one of the API keys.
    pub fn check_secret(&self, secret: &str) -> bool {
        (!self.password.is_empty() && self.password == secret)
            || self.api_keys.iter().any(|k| k == secret)
    }
}

/// CRUD permission bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Perms {
    pub read: bool,
    pub write: bool,
    pub create: bool,
    pub unlink: bool,
}

impl Perms {
    pub const ALL: Perms = Perms {
        read: true,
        write: true,
        create: true,
        unlink: true,
    };
    pub const NONE: Perms = Perms {
        read: false,
        write: false,
        create: false,
        unlink: false,
    };
    pub const READ: Perms = Perms {
        read: true,
        write: false,
        create: false,
        unlink: false,
    };
    /// read + write + create, no unlink.
    pub const RWC: Perms = Perms {
        read: true,
        write: true,
        create: true,
        unlink: false,
    };

    pub fn allows(&self, op: Op) -> bool {
        match op {
            Op::Read => self.read,
            Op::Write => self.write,
            Op::Create => self.create,
            Op::Unlink => self.unlink,
        }
    }
    fn union(self, o: Perms) -> Perms {
        Perms {
            read: self.read || o.read,
            write: self.write || o.write,
            create: self.create || o.create,
            unlink: self.unlink || o.unlink,
        }
    }
}

/// An ORM operation, for ACLs and record rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Read,
    Write,
    Create,
    Unlink,
}

/// Model ACLs (`ir.model.access`): a user's rights are the union of `everyone`,
/// the entries of the groups they belong to, and their uid's entry. Admins bypass.
/// `Access::default()` = everyone may do everything.
#[derive(Clone, Debug)]
pub struct Access {
    pub everyone: Perms,
    pub groups: BTreeMap<String, Perms>,
    pub uids: BTreeMap<i64, Perms>,
}

impl Default for Access {
    fn default() -> Self {
        Access {
            everyone: Perms::ALL,
            groups: BTreeMap::new(),
            uids: BTreeMap::new(),
        }
    }
}

impl Access {
    /// Nobody but admins and the listed groups/uids.
    pub fn restricted() -> Access {
        Access {
            everyone: Perms::NONE,
            groups: BTreeMap::new(),
            uids: BTreeMap::new(),
        }
    }
    pub fn everyone(mut self, p: Perms) -> Self {
        self.everyone = p;
        self
    }
    pub fn group(mut self, g: &str, p: Perms) -> Self {
        self.groups.insert(g.to_string(), p);
        self
    }
    pub fn uid(mut self, uid: i64, p: Perms) -> Self {
        self.uids.insert(uid, p);
        self
    }
    /// Effective rights of `user`.
    pub fn perms_for(&self, user: &User) -> Perms {
        if user.is_admin {
            return Perms::ALL;
        }
        let mut p = self.everyone;
        for g in &user.groups {
            if let Some(gp) = self.groups.get(g) {
                p = p.union(*gp);
            }
        }
        if let Some(up) = self.uids.get(&user.uid) {
            p = p.union(*up);
        }
        p
    }
}

/// A record rule (`ir.rule`). `domain` is a JSON domain where the string
/// `"uid"` (or `"user.id"`) stands for the current uid and `"company_ids"` for the
/// user's companies. A rule with no `groups` and no `uids` is global (always
/// applies, ANDed); other rules apply to members of a listed group or uid and are
/// ORed together, like Odoo. Admins bypass rules.
#[derive(Clone, Debug)]
pub struct Rule {
    pub name: String,
    pub groups: Vec<String>,
    pub uids: Vec<i64>,
    pub domain: Value,
    /// Operations the rule applies to.
    pub perms: Perms,
}

impl Rule {
    /// A global rule for all operations.
    pub fn new(name: &str, domain: Value) -> Rule {
        Rule {
            name: name.to_string(),
            groups: Vec::new(),
            uids: Vec::new(),
            domain,
            perms: Perms::ALL,
        }
    }
    pub fn for_group(mut self, g: &str) -> Self {
        self.groups.push(g.to_string());
        self
    }
    pub fn for_uid(mut self, uid: i64) -> Self {
        self.uids.push(uid);
        self
    }
    pub fn is_global(&self) -> bool {
        self.groups.is_empty() && self.uids.is_empty()
    }
    pub fn applies_to(&self, user: &User) -> bool {
        self.uids.contains(&user.uid) || self.groups.iter().any(|g| user.groups.contains(g))
    }
}

/// How a stored computed field is recomputed after every mutation.
#[derive(Clone, Debug, PartialEq)]
pub enum Compute {
    /// Sum of `sub` over the records of the x2many field `field`
    /// (e.g. `amount_total` = sum of `order_line.price_total`).
    Sum { field: String, sub: String },
    /// Product of these numeric fields of the same record.
    Product(Vec<String>),
}

/// A field definition (what `fields_get` describes).
#[derive(Clone, Debug)]
pub struct Field {
    /// char, text, integer, float, monetary, boolean, many2one, one2many,
    /// many2many, binary, date, datetime, selection, html.
    pub ftype: String,
    pub relation: Option<String>,
    /// one2many: the inverse many2one on the comodel (`relation_field`).
    pub inverse: Option<String>,
    /// `"partner_id.country_id"`: computed at read time by following the path.
    pub related: Option<String>,
    pub store: bool,
    pub depends: Vec<String>,
    pub string: String,
    pub required: bool,
    pub readonly: bool,
    pub selection: Vec<(String, String)>,
    pub compute: Option<Compute>,
    /// Default value on create.
    pub default: Option<Value>,
    /// `groups="..."`: only members of one of these groups (and admins) may read the field;
    /// `fields_get` hides it from others and `read` of it raises `AccessError`. Empty: everyone.
    pub groups: Vec<String>,
}

impl Field {
    pub fn new(ftype: &str, string: &str) -> Field {
        Field {
            ftype: ftype.to_string(),
            relation: None,
            inverse: None,
            related: None,
            store: true,
            depends: Vec::new(),
            string: string.to_string(),
            required: false,
            readonly: false,
            selection: Vec::new(),
            compute: None,
            default: None,
            groups: Vec::new(),
        }
    }
    pub fn char(s: &str) -> Field {
        Field::new("char", s)
    }
    pub fn text(s: &str) -> Field {
        Field::new("text", s)
    }
    pub fn integer(s: &str) -> Field {
        Field::new("integer", s)
    }
    pub fn float(s: &str) -> Field {
        Field::new("float", s)
    }
    pub fn monetary(s: &str) -> Field {
        Field::new("monetary", s)
    }
    pub fn boolean(s: &str) -> Field {
        Field::new("boolean", s)
    }
    pub fn date(s: &str) -> Field {
        Field::new("date", s)
    }
    pub fn datetime(s: &str) -> Field {
        Field::new("datetime", s)
    }
    pub fn binary(s: &str) -> Field {
        Field::new("binary", s)
    }
    pub fn many2one(relation: &str, s: &str) -> Field {
        let mut f = Field::new("many2one", s);
        f.relation = Some(relation.to_string());
        f
    }
    pub fn one2many(relation: &str, inverse: &str, s: &str) -> Field {
        let mut f = Field::new("one2many", s);
        f.relation = Some(relation.to_string());
        f.inverse = Some(inverse.to_string());
        f.store = false;
        f
    }
    pub fn many2many(relation: &str, s: &str) -> Field {
        let mut f = Field::new("many2many", s);
        f.relation = Some(relation.to_string());
        f
    }
    pub fn selection(s: &str, options: &[(&str, &str)]) -> Field {
        let mut f = Field::new("selection", s);
        f.selection = options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        f
    }
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }
    pub fn readonly(mut self) -> Self {
        self.readonly = true;
        self
    }
    pub fn not_stored(mut self) -> Self {
        self.store = false;
        self
    }
    pub fn default(mut self, v: Value) -> Self {
        self.default = Some(v);
        self
    }
    /// Restricts the field to members of `groups` (Odoo's `groups=` attribute).
    pub fn groups(mut self, groups: &[&str]) -> Self {
        self.groups = groups.iter().map(|g| g.to_string()).collect();
        self
    }
    /// Whether `user` may read this field (its `groups`, admins always).
    pub fn readable_by(&self, user: &User) -> bool {
        self.groups.is_empty()
            || user.is_admin
            || self.groups.iter().any(|g| user.groups.contains(g))
    }
    /// A non-stored related field (`related="partner_id.country_id"`); `depends` = the path.
    pub fn related(mut self, path: &str) -> Self {
        self.related = Some(path.to_string());
        self.depends = vec![path.to_string()];
        self.store = false;
        self.readonly = true;
        self
    }
    /// A stored computed field; sets `depends` and `readonly`.
    pub fn computed(mut self, c: Compute) -> Self {
        self.depends = match &c {
            Compute::Sum { field, sub } => vec![format!("{field}.{sub}")],
            Compute::Product(fs) => fs.clone(),
        };
        self.compute = Some(c);
        self.readonly = true;
        self
    }
    pub fn is_relational(&self) -> bool {
        matches!(self.ftype.as_str(), "many2one" | "one2many" | "many2many")
    }
    pub fn is_x2many(&self) -> bool {
        matches!(self.ftype.as_str(), "one2many" | "many2many")
    }
    pub fn is_numeric(&self) -> bool {
        matches!(self.ftype.as_str(), "integer" | "float" | "monetary")
    }
}

/// A model: fields, records, ACLs and record rules.
#[derive(Clone, Debug)]
pub struct Model {
    pub name: String,
    /// `_description`, used in AccessError messages ("Sales Order").
    pub description: String,
    pub fields: BTreeMap<String, Field>,
    pub records: BTreeMap<i64, Record>,
    pub access: Access,
    pub rules: Vec<Rule>,
    pub next_id: i64,
    /// `_order`, e.g. `"date_order desc, id desc"`.
    pub order: String,
    /// `_rec_name`: the field used for `display_name`.
    pub rec_name: String,
    /// Optional display-name template like `"[{default_code}] {name}"`; when a
    /// referenced field is empty, falls back to `rec_name`.
    pub display_template: Option<String>,
    /// When set, `create` without `name` assigns `format!("{prefix}{id:05}")`.
    pub sequence: Option<String>,
}

impl Model {
    /// A model with the magic fields (`id`, `display_name`, `create_date`,
    /// `write_date`, `create_uid`, `write_uid`), open access, order `id`, rec_name `name`.
    pub fn new(name: &str, description: &str) -> Model {
        let mut fields = BTreeMap::new();
        fields.insert("id".to_string(), Field::integer("ID").readonly());
        fields.insert(
            "display_name".to_string(),
            Field::char("Display Name").readonly().not_stored(),
        );
        fields.insert(
            "create_date".to_string(),
            Field::datetime("Created on").readonly(),
        );
        fields.insert(
            "write_date".to_string(),
            Field::datetime("Last Updated on").readonly(),
        );
        fields.insert(
            "create_uid".to_string(),
            Field::many2one("res.users", "Created by").readonly(),
        );
        fields.insert(
            "write_uid".to_string(),
            Field::many2one("res.users", "Last Updated by").readonly(),
        );
        if let Some(f) = fields.get_mut("display_name") {
            f.depends = vec!["name".to_string()];
        }
        Model {
            name: name.to_string(),
            description: description.to_string(),
            fields,
            records: BTreeMap::new(),
            access: Access::default(),
            rules: Vec::new(),
            next_id: 1,
            order: "id".to_string(),
            rec_name: "name".to_string(),
            display_template: None,
            sequence: None,
        }
    }
    pub fn field(mut self, name: &str, f: Field) -> Self {
        self.fields.insert(name.to_string(), f);
        self
    }
    pub fn access(mut self, a: Access) -> Self {
        self.access = a;
        self
    }
    pub fn rule(mut self, r: Rule) -> Self {
        self.rules.push(r);
        self
    }
    pub fn order(mut self, o: &str) -> Self {
        self.order = o.to_string();
        self
    }
    pub fn rec_name(mut self, f: &str) -> Self {
        self.rec_name = f.to_string();
        self
    }
    pub fn display_template(mut self, t: &str) -> Self {
        self.display_template = Some(t.to_string());
        self
    }
    pub fn sequence(mut self, prefix: &str) -> Self {
        self.sequence = Some(prefix.to_string());
        self
    }
    /// Display name of a record of this model (does not follow relations).
    pub fn display_name_of(&self, rec: &Record) -> String {
        let id = rec.get("id").and_then(Value::as_i64).unwrap_or(0);
        let plain = |v: Option<&Value>| -> Option<String> {
            match v {
                Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
                Some(Value::Number(n)) => Some(n.to_string()),
                _ => None,
            }
        };
        let base =
            plain(rec.get(&self.rec_name)).unwrap_or_else(|| format!("{},{}", self.name, id));
        if let Some(t) = &self.display_template {
            let mut out = String::new();
            let mut rest = t.as_str();
            while let Some(start) = rest.find('{') {
                out.push_str(&rest[..start]);
                let Some(end) = rest[start..].find('}') else {
                    break;
                };
                let key = &rest[start + 1..start + end];
                match plain(rec.get(key)) {
                    Some(v) => out.push_str(&v),
                    None => return base,
                }
                rest = &rest[start + end + 1..];
            }
            out.push_str(rest);
            return out;
        }
        base
    }
}

/// The whole fake database.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub version: OdooVersion,
    /// Database name (`"odoo"`).
    pub db: String,
    pub users: Vec<User>,
    pub models: BTreeMap<String, Model>,
    /// Serve `/json/2/<model>/<method>` even when `version` is not V18.
    pub json2: bool,
    /// `res.company` 1's name (session_info `user_companies`).
    pub company_name: String,
}

impl Default for Dataset {
    fn default() -> Self {
        Dataset {
            version: OdooVersion::V17,
            db: "odoo".to_string(),
            users: Vec::new(),
            models: BTreeMap::new(),
            json2: false,
            company_name: "YourCompany".to_string(),
        }
    }
}

/// Current UTC time as Odoo serialises datetimes: `"YYYY-MM-DD HH:MM:SS"`.
pub fn now_utc() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    format_utc(secs)
}

/// Formats a unix timestamp as `"YYYY-MM-DD HH:MM:SS"` (UTC).
pub fn format_utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month, day). (H. Hinnant's algorithm.)
pub(crate) fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) → days since 1970-01-01.
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl Dataset {
    /// An empty V17 dataset with db `"odoo"`.
    pub fn new() -> Dataset {
        Dataset::default()
    }
    pub fn with_version(mut self, v: OdooVersion) -> Self {
        self.version = v;
        self
    }
    pub fn add_user(&mut self, u: User) -> &mut Self {
        self.users.retain(|x| x.uid != u.uid);
        self.users.push(u);
        self
    }
    /// Adds (or replaces) a model; when the dataset has `ir.model`, also lists it there.
    pub fn add_model(&mut self, m: Model) -> &mut Self {
        self.models.insert(m.name.clone(), m);
        self.sync_ir_model();
        self
    }

    /// Adds `ir.model` (see [`Dataset::ir_model`]), listing every model of the dataset,
    /// itself included. [`Dataset::demo`] has it; models added later with
    /// [`Dataset::add_model`] are listed too.
    pub fn add_ir_model(&mut self) -> &mut Self {
        self.add_model(Dataset::ir_model())
    }

    /// The `ir.model` model: one record per model (`model`, `name` = the description,
    /// `state` = `base`, `transient` = false), order `model`, readable by every internal
    /// user (`base.group_user`), writable by nobody but admins (as in Odoo, where only
    /// `base.group_system` may change it).
    pub fn ir_model() -> Model {
        Model::new("ir.model", "Models")
            .field("model", Field::char("Model").required())
            .field("name", Field::char("Model Description").required())
            .field(
                "state",
                Field::selection(
                    "Type",
                    &[("manual", "Custom Object"), ("base", "Base Object")],
                )
                .default(json!("manual")),
            )
            .field(
                "transient",
                Field::boolean("Transient Model").default(json!(false)),
            )
            .order("model")
            .access(Access::restricted().group("base.group_user", Perms::READ))
    }

    /// Makes `ir.model`'s records list exactly the dataset's models (a no-op without
    /// `ir.model`). Existing records keep their ids; new ones take the next ids. Call it
    /// after inserting into [`Dataset::models`] directly.
    pub fn sync_ir_model(&mut self) {
        let names: Vec<(String, String)> = self
            .models
            .values()
            .map(|m| (m.name.clone(), m.description.clone()))
            .collect();
        let Some(ir) = self.models.get_mut("ir.model") else {
            return;
        };
        let listed = |r: &Record| r.get("model").and_then(Value::as_str).map(str::to_string);
        ir.records
            .retain(|_, r| listed(r).is_some_and(|m| names.iter().any(|(n, _)| *n == m)));
        let have: Vec<String> = ir.records.values().filter_map(listed).collect();
        let stamp = "2024-01-15 09:00:00";
        for (name, description) in names {
            if have.contains(&name) {
                continue;
            }
            let id = ir
                .next_id
                .max(ir.records.keys().next_back().map(|k| k + 1).unwrap_or(1));
            let mut rec = Record::new();
            for (k, v) in [
                ("id", json!(id)),
                ("model", json!(name)),
                ("name", json!(description)),
                ("state", json!("base")),
                ("transient", json!(false)),
                ("create_date", json!(stamp)),
                ("write_date", json!(stamp)),
                ("create_uid", json!(1)),
                ("write_uid", json!(1)),
            ] {
                rec.insert(k.to_string(), v);
            }
            ir.records.insert(id, rec);
            ir.next_id = id + 1;
        }
    }
    pub fn user(&self, uid: i64) -> Option<&User> {
        self.users.iter().find(|u| u.uid == uid)
    }
    pub fn user_by_login(&self, login: &str) -> Option<&User> {
        self.users.iter().find(|u| u.login == login)
    }
    pub fn user_by_api_key(&self, key: &str) -> Option<&User> {
        self.users
            .iter()
            .find(|u| u.api_keys.iter().any(|k| k == key))
    }
    pub fn model(&self, name: &str) -> Option<&Model> {
        self.models.get(name)
    }
    pub fn model_mut(&mut self, name: &str) -> Option<&mut Model> {
        self.models.get_mut(name)
    }
    /// A record by model and id.
    pub fn record(&self, model: &str, id: i64) -> Option<&Record> {
        self.models.get(model).and_then(|m| m.records.get(&id))
    }

    /// Creates a record "from inside Odoo" (no ACL checks, as superuser): accepts
    /// the same values as the ORM's `create` (x2many commands included), fills
    /// defaults, `create_date`/`write_date`, recomputes stored computes.
    pub fn insert(&mut self, model: &str, vals: Value) -> Result<i64, String> {
        let vals = match vals {
            Value::Object(m) => m,
            _ => return Err("vals must be an object".to_string()),
        };
        crate::orm::create_raw(self, model, &vals, 1).map_err(|e| e.message)
    }

    /// Writes a record "from inside Odoo" (no ACL checks): updates the values,
    /// bumps `write_date` (and `write_uid` = 1) and recomputes stored computes.
    pub fn write(&mut self, model: &str, id: i64, vals: Value) -> Result<(), String> {
        let vals = match vals {
            Value::Object(m) => m,
            _ => return Err("vals must be an object".to_string()),
        };
        crate::orm::write_raw(self, model, &[id], &vals, 1).map_err(|e| e.message)
    }

    /// Deletes records "from inside Odoo" (no ACL checks).
    pub fn unlink(&mut self, model: &str, ids: &[i64]) -> Result<(), String> {
        crate::orm::unlink_raw(self, model, ids).map_err(|e| e.message)
    }

    /// Sets a record's `write_date` (e.g. into the past or future) without other changes.
    pub fn set_write_date(&mut self, model: &str, id: i64, when: &str) {
        if let Some(r) = self
            .models
            .get_mut(model)
            .and_then(|m| m.records.get_mut(&id))
        {
            r.insert("write_date".to_string(), Value::String(when.to_string()));
        }
    }

    /// The demo database (Odoo 17 unless changed with [`Dataset::with_version`]):
    ///
    /// * users: `admin`/`admin` (uid 2, admin, API key `admin-api-key`, partner 3) and
    ///   `demo`/`demo` (uid 6, groups `base.group_user` + `sales_team.group_sale_salesman`,
    ///   API key `demo-api-key`, partner 7);
    /// * models: `res.company` (1), `res.country` (5), `res.users` (3 incl. OdooBot),
    ///   `res.partner` (30, one archived, 3 with `image_1920`), `product.product` (6),
    ///   `sale.order` (10: ids 3, 5, 8 belong to demo), `sale.order.line` (~22),
    ///   `account.move` (3, demo has no access at all);
    /// * record rules: "Personal Orders" on sale.order `[["user_id","=","uid"]]` and
    ///   "Personal Order Lines" on sale.order.line `[["order_id.user_id","=","uid"]]`,
    ///   both for `sales_team.group_sale_salesman`;
    /// * ACLs: demo may read/write/create but not unlink sale.order(.line); only read
    ///   res.users, res.country, res.company, product.product; full res.partner;
    /// * `ir.model` lists every model (itself included, and models added later); any
    ///   internal user may read it.
    pub fn demo() -> Dataset {
        demo_dataset()
    }
}

const SALESMAN: &str = "sales_team.group_sale_salesman";
const SALE_MANAGER: &str = "sales_team.group_sale_manager";
const ACCOUNTANT: &str = "account.group_account_manager";

fn demo_dataset() -> Dataset {
    let mut ds = Dataset::new();
    ds.add_user(
        User::new(2, "admin", "admin", "Mitchell Admin")
            .admin()
            .api_key("admin-api-key")
            .group(SALE_MANAGER)
            .group(SALESMAN)
            .group(ACCOUNTANT)
            .partner(3),
    );
    ds.add_user(
        User::new(6, "demo", "demo", "Marc Demo")
            .api_key("demo-api-key")
            .group(SALESMAN)
            .partner(7),
    );

    let internal_read = Access::restricted().group("base.group_user", Perms::READ);

    ds.add_model(
        Model::new("res.company", "Companies")
            .field("name", Field::char("Company Name").required())
            .field("partner_id", Field::many2one("res.partner", "Partner"))
            .field("currency_id", Field::char("Currency"))
            .access(internal_read.clone()),
    );
    ds.add_model(
        Model::new("res.country", "Country")
            .field("name", Field::char("Country Name").required())
            .field("code", Field::char("Country Code"))
            .order("name")
            .access(internal_read.clone()),
    );
    ds.add_model(
        Model::new("res.users", "User")
            .field("name", Field::char("Name").related("partner_id.name"))
            .field("login", Field::char("Login").required())
            .field(
                "partner_id",
                Field::many2one("res.partner", "Related Partner").required(),
            )
            .field("company_id", Field::many2one("res.company", "Company"))
            .field("active", Field::boolean("Active").default(json!(true)))
            .access(internal_read.clone()),
    );
    ds.add_model(
        Model::new("res.partner", "Contact")
            .field("name", Field::char("Name"))
            .field("email", Field::char("Email"))
            .field("phone", Field::char("Phone"))
            .field(
                "is_company",
                Field::boolean("Is a Company").default(json!(false)),
            )
            .field("country_id", Field::many2one("res.country", "Country"))
            .field(
                "country_code",
                Field::char("Country Code").related("country_id.code"),
            )
            .field("user_id", Field::many2one("res.users", "Salesperson"))
            .field(
                "parent_id",
                Field::many2one("res.partner", "Related Company"),
            )
            .field(
                "child_ids",
                Field::one2many("res.partner", "parent_id", "Contact"),
            )
            .field("image_1920", Field::binary("Image"))
            .field("comment", Field::text("Notes"))
            .field("credit_limit", Field::float("Credit Limit"))
            .field("active", Field::boolean("Active").default(json!(true)))
            .field("company_id", Field::many2one("res.company", "Company"))
            .order("name, id desc")
            .access(Access::restricted().group("base.group_user", Perms::ALL)),
    );
    ds.add_model(
        Model::new("product.product", "Product Variant")
            .field("name", Field::char("Name").required())
            .field("default_code", Field::char("Internal Reference"))
            .field("list_price", Field::float("Sales Price"))
            .field(
                "type",
                Field::selection(
                    "Product Type",
                    &[
                        ("consu", "Goods"),
                        ("service", "Service"),
                        ("combo", "Combo"),
                    ],
                )
                .default(json!("consu")),
            )
            .field("active", Field::boolean("Active").default(json!(true)))
            .display_template("[{default_code}] {name}")
            .order("default_code, name, id")
            .access(internal_read.clone().group(SALE_MANAGER, Perms::ALL)),
    );
    let states = [
        ("draft", "Quotation"),
        ("sent", "Quotation Sent"),
        ("sale", "Sales Order"),
        ("cancel", "Cancelled"),
    ];
    ds.add_model(
        Model::new("sale.order", "Sales Order")
            .field("name", Field::char("Order Reference").required())
            .field(
                "partner_id",
                Field::many2one("res.partner", "Customer").required(),
            )
            .field("user_id", Field::many2one("res.users", "Salesperson"))
            .field(
                "state",
                Field::selection("Status", &states).default(json!("draft")),
            )
            .field("date_order", Field::datetime("Order Date"))
            .field(
                "order_line",
                Field::one2many("sale.order.line", "order_id", "Order Lines"),
            )
            .field(
                "amount_total",
                Field::monetary("Total").computed(Compute::Sum {
                    field: "order_line".into(),
                    sub: "price_total".into(),
                }),
            )
            .field(
                "partner_country_id",
                Field::many2one("res.country", "Customer Country").related("partner_id.country_id"),
            )
            .field("note", Field::text("Terms and conditions"))
            .field(
                "company_id",
                Field::many2one("res.company", "Company").default(json!(1)),
            )
            .order("date_order desc, id desc")
            .sequence("S")
            .access(
                Access::restricted()
                    .group(SALESMAN, Perms::RWC)
                    .group(SALE_MANAGER, Perms::ALL),
            )
            .rule(
                Rule::new("Personal Orders", json!([["user_id", "=", "uid"]])).for_group(SALESMAN),
            ),
    );
    ds.add_model(
        Model::new("sale.order.line", "Sales Order Line")
            .field(
                "order_id",
                Field::many2one("sale.order", "Order Reference").required(),
            )
            .field("product_id", Field::many2one("product.product", "Product"))
            .field("name", Field::text("Description").required())
            .field("sequence", Field::integer("Sequence").default(json!(10)))
            .field(
                "product_uom_qty",
                Field::float("Quantity").default(json!(1.0)),
            )
            .field("price_unit", Field::float("Unit Price"))
            .field(
                "price_total",
                Field::monetary("Total").computed(Compute::Product(vec![
                    "product_uom_qty".into(),
                    "price_unit".into(),
                ])),
            )
            .order("order_id, sequence, id")
            .access(
                Access::restricted()
                    .group(SALESMAN, Perms::ALL)
                    .group(SALE_MANAGER, Perms::ALL),
            )
            .rule(
                Rule::new(
                    "Personal Order Lines",
                    json!([["order_id.user_id", "=", "uid"]]),
                )
                .for_group(SALESMAN),
            ),
    );
    ds.add_model(
        Model::new("account.move", "Journal Entry")
            .field("name", Field::char("Number"))
            .field("partner_id", Field::many2one("res.partner", "Partner"))
            .field("amount_total", Field::monetary("Total"))
            .field(
                "state",
                Field::selection(
                    "Status",
                    &[
                        ("draft", "Draft"),
                        ("posted", "Posted"),
                        ("cancel", "Cancelled"),
                    ],
                )
                .default(json!("draft")),
            )
            .field("invoice_date", Field::date("Invoice/Bill Date"))
            .order("invoice_date desc, name desc, id desc")
            .access(Access::restricted().group(ACCOUNTANT, Perms::ALL)),
    );

    let stamp = "2024-01-15 09:00:00";
    let put = |ds: &mut Dataset, model: &str, id: i64, mut vals: Value| {
        if let Some(o) = vals.as_object_mut() {
            o.insert("id".into(), json!(id));
            o.entry("create_date").or_insert(json!(stamp));
            o.entry("write_date").or_insert(json!(stamp));
            o.entry("create_uid").or_insert(json!(1));
            o.entry("write_uid").or_insert(json!(1));
        }
        if let (Some(m), Value::Object(o)) = (ds.models.get_mut(model), vals) {
            let mut rec = o;
            for (fname, f) in &m.fields {
                if f.store && !rec.contains_key(fname) && fname != "display_name" {
                    let v = f.default.clone().unwrap_or(if f.ftype == "many2many" {
                        json!([])
                    } else {
                        Value::Null
                    });
                    rec.insert(fname.clone(), v);
                }
            }
            m.records.insert(id, rec);
            if m.next_id <= id {
                m.next_id = id + 1;
            }
        }
    };

    put(
        &mut ds,
        "res.company",
        1,
        json!({"name": "YourCompany", "partner_id": 1, "currency_id": "EUR"}),
    );
    for (id, name, code) in [
        (1, "Belgium", "BE"),
        (2, "France", "FR"),
        (3, "Germany", "DE"),
        (4, "Netherlands", "NL"),
        (5, "United States", "US"),
    ] {
        put(
            &mut ds,
            "res.country",
            id,
            json!({"name": name, "code": code}),
        );
    }
    put(
        &mut ds,
        "res.users",
        1,
        json!({"login": "__system__", "partner_id": 2, "company_id": 1, "active": false}),
    );
    put(
        &mut ds,
        "res.users",
        2,
        json!({"login": "admin", "partner_id": 3, "company_id": 1}),
    );
    put(
        &mut ds,
        "res.users",
        6,
        json!({"login": "demo", "partner_id": 7, "company_id": 1}),
    );

    let png = base64_encode(&crate::assets::png(48, 48, 7));
    type PartnerRow = (
        i64,
        &'static str,
        bool,
        Option<i64>,
        Option<i64>,
        Option<i64>,
    );
    let partners: [PartnerRow; 30] = [
        // id, name, is_company, country, salesperson, parent
        (1, "YourCompany", true, Some(1), None, None),
        (2, "OdooBot", false, None, None, None),
        (3, "Mitchell Admin", false, Some(5), None, Some(1)),
        (7, "Marc Demo", false, Some(5), None, Some(1)),
        (8, "Azure Interior", true, Some(5), Some(2), None),
        (9, "Deco Addict", true, Some(5), Some(6), None),
        (10, "Gemini Furniture", true, Some(5), Some(2), None),
        (11, "Lumber Inc", true, Some(5), Some(6), None),
        (12, "Ready Mat", true, Some(5), Some(2), None),
        (13, "The Jackson Group", true, Some(5), None, None),
        (14, "Wood Corner", true, Some(5), Some(6), None),
        (15, "Brandon Freeman", false, Some(5), None, Some(8)),
        (16, "Nicole Ford", false, Some(5), None, Some(8)),
        (17, "Colleen Diaz", false, Some(5), None, Some(8)),
        (18, "Douglas Fletcher", false, Some(5), None, Some(9)),
        (19, "Floyd Steward", false, Some(5), None, Some(9)),
        (20, "Addison Olson", false, Some(5), None, Some(9)),
        (21, "Edwin Hansen", false, Some(5), None, Some(10)),
        (22, "Jesse Brown", false, Some(5), None, Some(10)),
        (23, "Oscar Morgan", false, Some(5), None, Some(10)),
        (24, "Billy Fox", false, Some(5), None, Some(11)),
        (25, "Kim Snyder", false, Some(5), None, Some(12)),
        (26, "Toni Jimenez", false, Some(5), None, Some(13)),
        (27, "Theodore Gardner", false, Some(5), None, Some(14)),
        (28, "Chester Reed", false, Some(1), None, None),
        (29, "Agrolait", true, Some(1), Some(6), None),
        (30, "Camptocamp", true, Some(2), Some(2), None),
        (31, "Bayern Möbel GmbH", true, Some(3), None, None),
        (32, "Holland Design", true, Some(4), Some(2), None),
        (33, "Archived Partner", false, Some(1), None, None),
    ];
    for (id, name, is_company, country, user, parent) in partners {
        let slug: String = name
            .to_lowercase()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        let mut v = json!({
            "name": name,
            "email": format!("{slug}@example.com"),
            "phone": format!("+1 555-01{:02}", id),
            "is_company": is_company,
            "country_id": country,
            "user_id": user,
            "parent_id": parent,
            "company_id": 1,
            "credit_limit": (id * 100) as f64,
            "comment": if is_company { json!(format!("<p>{name} is a customer since 2019.</p>")) } else { json!(null) },
            "active": id != 33,
        });
        if matches!(id, 3 | 8 | 9) {
            v["image_1920"] = json!(png);
        }
        if id == 2 {
            v["email"] = json!("odoobot@example.com");
        }
        put(&mut ds, "res.partner", id, v);
    }

    let products = [
        (1, "Office Chair", "FURN_7777", 70.0),
        (2, "Desk Combination", "FURN_7800", 450.0),
        (3, "Large Cabinet", "E-COM07", 320.0),
        (4, "Conference Chair", "FURN_1118", 33.0),
        (5, "Customizable Desk", "FURN_0096", 750.0),
        (6, "Consulting Hours", "", 120.0),
    ];
    for (id, name, code, price) in products {
        let typ = if id == 6 { "service" } else { "consu" };
        put(
            &mut ds,
            "product.product",
            id,
            json!({"name": name, "default_code": if code.is_empty() { json!(false) } else { json!(code) }, "list_price": price, "type": typ}),
        );
    }

    // sale orders: (id, partner, salesperson, state, date)
    let orders = [
        (1, 8, 2, "draft", "2024-01-02 10:00:00"),
        (2, 10, 2, "sent", "2024-01-05 11:30:00"),
        (3, 9, 6, "sale", "2024-01-07 08:15:00"),
        (4, 12, 2, "sale", "2024-01-09 14:00:00"),
        (5, 11, 6, "draft", "2024-01-10 16:45:00"),
        (6, 13, 2, "cancel", "2024-01-11 09:00:00"),
        (7, 30, 2, "sale", "2024-01-12 10:20:00"),
        (8, 29, 6, "sent", "2024-01-13 13:10:00"),
        (9, 32, 2, "draft", "2024-01-14 15:00:00"),
        (10, 8, 2, "sale", "2024-01-15 08:00:00"),
    ];
    let mut line_id = 1;
    for (id, partner, user, state, date) in orders {
        put(
            &mut ds,
            "sale.order",
            id,
            json!({"name": format!("S{id:05}"), "partner_id": partner, "user_id": user, "state": state, "date_order": date, "company_id": 1, "amount_total": 0.0}),
        );
        let nlines = 1 + (id % 3);
        for k in 0..nlines {
            let prod = ((id + k) % 6) + 1;
            let (pname, price) = products
                .iter()
                .find(|p| p.0 == prod)
                .map(|p| (p.1, p.3))
                .unwrap_or(("Product", 1.0));
            let qty = ((k + 1) * if id % 2 == 0 { 2 } else { 1 }) as f64;
            put(
                &mut ds,
                "sale.order.line",
                line_id,
                json!({"order_id": id, "product_id": prod, "name": pname, "sequence": 10 + k, "product_uom_qty": qty, "price_unit": price, "price_total": 0.0}),
            );
            line_id += 1;
        }
    }
    for (id, name, partner, amount, state, date) in [
        (1, "INV/2024/00001", 8, 1500.0, "posted", "2024-01-03"),
        (2, "INV/2024/00002", 9, 980.5, "posted", "2024-01-08"),
        (3, "/", 10, 0.0, "draft", "2024-01-16"),
    ] {
        put(
            &mut ds,
            "account.move",
            id,
            json!({"name": name, "partner_id": partner, "amount_total": amount, "state": state, "invoice_date": date}),
        );
    }
    // Settle stored computes without bumping the fixed demo write_dates.
    crate::orm::recompute(&mut ds, false);
    ds.add_ir_model();
    ds
}

pub(crate) fn base64_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}
