//! The aggregate cache gives exactly what a full replay gives: random command sequences (a
//! random sample of the shipped cohort's lines, in order, sent through two handlers that each
//! keep their own cache, as two servers would), then every stream's cached state equals the
//! fold of its whole stream from the journal.

use crate::helpers::{TestEnv, COHORT};
use fieldtrail_domain::{Cohort, FieldStudy, Programme};
use fieldtrail_journal::{fold_into, AggregateCache, Journal};
use proptest::prelude::*;

async fn replayed<A>(journal: &Journal, id: &str) -> A
where
    A: cqrs_es::Aggregate + Default + 'static,
{
    let events = journal.stream(A::TYPE, id, 0).await.unwrap();
    let mut aggregate = A::default();
    fold_into(&mut aggregate, 0, &events).unwrap();
    aggregate
}

async fn check(keep: Vec<bool>, second: Vec<bool>) {
    let env = TestEnv::sqlite("cache").await;
    let (one, two) = (env.handler(), env.handler());
    let lines: Vec<&str> = COHORT.lines().filter(|l| !l.trim().is_empty()).collect();
    for (i, line) in lines.iter().enumerate() {
        if !keep[i % keep.len()] {
            continue;
        }
        let handler = if second[i % second.len()] { &two } else { &one };
        handler.handle_json(line, chrono::Utc::now()).await.unwrap();
    }
    let journal = &env.journal;
    let cohorts = ["cohort-2025"];
    let studies = ["fs25-a", "fs25-b", "fs25-c"];
    for cache in [
        one.cache(),
        two.cache(),
        &AggregateCache::new(journal.clone(), 2),
    ] {
        let (p, _) = cache.load::<Programme>("cisdcp").await.unwrap();
        assert_eq!(p, replayed::<Programme>(journal, "cisdcp").await);
        for id in cohorts {
            let (c, _) = cache.load::<Cohort>(id).await.unwrap();
            assert_eq!(c, replayed::<Cohort>(journal, id).await, "{id}");
        }
        for id in studies {
            let (f, _) = cache.load::<FieldStudy>(id).await.unwrap();
            assert_eq!(f, replayed::<FieldStudy>(journal, id).await, "{id}");
        }
    }
    env.cleanup().await;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn cached_aggregates_equal_a_full_replay(
        keep in proptest::collection::vec(proptest::bool::weighted(0.85), 1..40),
        second in proptest::collection::vec(any::<bool>(), 1..40),
    ) {
        tokio::runtime::Runtime::new().unwrap().block_on(check(keep, second));
    }
}
