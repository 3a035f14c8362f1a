//! Which queues this replica exports: the queue listing filtered by include/exclude (ids or name globs),
//! divisions (names or ids) and the shard.

use super::shard::Shard;
use crate::genesys::models::Queue;
use crate::model::QueueMeta;
use wildmatch::WildMatch;

/// Queue filters from `queues.include/exclude/divisions`.
#[derive(Debug, Clone, Default)]
pub struct QueueFilter {
    include: Vec<Pattern>,
    exclude: Vec<Pattern>,
    divisions: Vec<String>,
}

/// An entry matches a queue's id exactly or its name as a glob (`*`, `?`), ignoring case in names.
#[derive(Debug, Clone)]
struct Pattern {
    raw: String,
    glob: WildMatch,
}

impl Pattern {
    fn new(raw: &str) -> Self {
        Pattern { raw: raw.to_owned(), glob: WildMatch::new(&raw.to_lowercase()) }
    }
    fn matches(&self, q: &Queue) -> bool {
        q.id == self.raw || self.glob.matches(&q.name.to_lowercase())
    }
}

impl QueueFilter {
    pub fn new(include: &[String], exclude: &[String], divisions: &[String]) -> Self {
        QueueFilter {
            include: include.iter().map(|s| Pattern::new(s)).collect(),
            exclude: exclude.iter().map(|s| Pattern::new(s)).collect(),
            divisions: divisions.iter().map(|d| d.to_lowercase()).collect(),
        }
    }

    pub fn keeps(&self, q: &Queue) -> bool {
        if !self.include.is_empty() && !self.include.iter().any(|p| p.matches(q)) {
            return false;
        }
        if self.exclude.iter().any(|p| p.matches(q)) {
            return false;
        }
        if !self.divisions.is_empty() {
            let Some(d) = &q.division else { return false };
            let name = d.name.as_deref().unwrap_or("").to_lowercase();
            if !self.divisions.iter().any(|want| *want == d.id.to_lowercase() || *want == name) {
                return false;
            }
        }
        true
    }
}

/// The listing reduced to what this replica exports, sorted by id for stable channel assignment.
pub fn select(queues: Vec<Queue>, filter: &QueueFilter, shard: Shard) -> Vec<QueueMeta> {
    let mut out: Vec<QueueMeta> = queues
        .into_iter()
        .filter(|q| !q.id.is_empty() && filter.keeps(q) && shard.owns(&q.id))
        .map(|q| {
            let (division_id, division) = match q.division {
                Some(d) => {
                    let name = d.name.unwrap_or_default();
                    (d.id, name)
                }
                None => (String::new(), String::new()),
            };
            QueueMeta { id: q.id, name: q.name, division_id, division }
        })
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out.dedup_by(|a, b| a.id == b.id);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genesys::models::DivisionRef;

    fn q(id: &str, name: &str, div: &str) -> Queue {
        Queue {
            id: id.into(),
            name: name.into(),
            division: Some(DivisionRef { id: format!("d-{div}"), name: Some(div.into()), self_uri: None }),
            ..Default::default()
        }
    }

    #[test]
    fn filters() {
        let all = vec![q("1", "Sales EN", "Home"), q("2", "Sales FR", "EU"), q("3", "Support", "Home")];
        let f = QueueFilter::new(&["sales*".into(), "3".into()], &["Sales FR".into()], &[]);
        let ids: Vec<_> = select(all.clone(), &f, Shard::ALL).into_iter().map(|m| m.id).collect();
        assert_eq!(ids, vec!["1", "3"]);
        let f = QueueFilter::new(&[], &[], &["eu".into(), "d-Home".into()]);
        assert_eq!(select(all.clone(), &f, Shard::ALL).len(), 3);
        let f = QueueFilter::new(&[], &[], &["EU".into()]);
        let m = select(all, &f, Shard::ALL);
        assert_eq!((m.len(), m[0].division.as_str(), m[0].division_id.as_str()), (1, "EU", "d-EU"));
    }
}
