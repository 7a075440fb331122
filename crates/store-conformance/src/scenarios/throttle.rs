//! Failed-authentication buckets.

use gatehouse_core::ports::Store;

/// Failure buckets: each failure counts once, levels drain with time, keys are apart.
pub async fn throttle_buckets(s: &dyn Store) {
    let rate = 0.5; // drains one failure every two seconds
    assert_eq!(
        s.failure_level("ip:10.0.0.1", rate, 1000.0).await.unwrap(),
        0.0
    );
    assert_eq!(
        s.add_failure("ip:10.0.0.1", rate, 1000.0).await.unwrap(),
        0.0
    );
    assert_eq!(
        s.add_failure("ip:10.0.0.1", rate, 1000.0).await.unwrap(),
        1.0
    );
    assert_eq!(
        s.add_failure("ip:10.0.0.1", rate, 1000.0).await.unwrap(),
        2.0
    );
    assert_eq!(
        s.failure_level("ip:10.0.0.1", rate, 1000.0).await.unwrap(),
        3.0
    );
    // Two seconds later one failure has drained; another key is untouched.
    assert_eq!(
        s.failure_level("ip:10.0.0.1", rate, 1002.0).await.unwrap(),
        2.0
    );
    assert_eq!(
        s.add_failure("ip:10.0.0.1", rate, 1002.0).await.unwrap(),
        2.0
    );
    assert_eq!(
        s.failure_level("client:x", rate, 1002.0).await.unwrap(),
        0.0
    );
    // Long after, empty again; a clock a little behind never adds failures.
    assert_eq!(
        s.failure_level("ip:10.0.0.1", rate, 2000.0).await.unwrap(),
        0.0
    );
    assert_eq!(
        s.add_failure("ip:10.0.0.1", rate, 1001.0).await.unwrap(),
        3.0
    );
}
