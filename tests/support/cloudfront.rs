//! A plain, blocking CloudFront client for the tests: makes a distribution
//! on the test server and reads back the invalidations sent to it.

use aws_sdk_cloudfront::Client;
use aws_sdk_cloudfront::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_cloudfront::types::{
    DefaultCacheBehavior, DistributionConfig, Origin, Origins, S3OriginConfig, ViewerProtocolPolicy,
};

use super::{S3Server, random_hex};

pub struct CloudFront {
    client: Client,
    runtime: tokio::runtime::Runtime,
}

impl CloudFront {
    pub fn new(server: &S3Server) -> CloudFront {
        let config = aws_sdk_cloudfront::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .credentials_provider(Credentials::new(
                &server.access_key,
                &server.secret_key,
                None,
                None,
                "test",
            ))
            .region(Region::new(server.region.clone()))
            .endpoint_url(&server.endpoint)
            .build();
        CloudFront {
            client: Client::from_conf(config),
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
        }
    }

    /// A distribution in front of `bucket`; returns its id.
    pub fn create_distribution(&self, bucket: &str) -> String {
        let origin = Origin::builder()
            .id("origin")
            .domain_name(format!("{bucket}.s3.amazonaws.com"))
            .s3_origin_config(S3OriginConfig::builder().origin_access_identity("").build())
            .build()
            .expect("origin");
        let behavior = DefaultCacheBehavior::builder()
            .target_origin_id("origin")
            .viewer_protocol_policy(ViewerProtocolPolicy::AllowAll)
            // The managed CachingOptimized policy.
            .cache_policy_id("658327ea-f89d-4fab-a63d-7e88639e58f6")
            .build()
            .expect("cache behavior");
        let config = DistributionConfig::builder()
            .caller_reference(format!("test-{}", random_hex(8)))
            .comment("assetpub test")
            .enabled(true)
            .origins(
                Origins::builder()
                    .quantity(1)
                    .items(origin)
                    .build()
                    .expect("origins"),
            )
            .default_cache_behavior(behavior)
            .build()
            .expect("distribution config");
        let out = self
            .runtime
            .block_on(
                self.client
                    .create_distribution()
                    .distribution_config(config)
                    .send(),
            )
            .unwrap_or_else(|e| panic!("CreateDistribution: {e:?}"));
        out.distribution.expect("a distribution").id
    }

    /// The ids of every invalidation sent to `distribution`.
    pub fn invalidation_ids(&self, distribution: &str) -> Vec<String> {
        let out = self
            .runtime
            .block_on(
                self.client
                    .list_invalidations()
                    .distribution_id(distribution)
                    .send(),
            )
            .unwrap_or_else(|e| panic!("ListInvalidations {distribution}: {e:?}"));
        let mut ids: Vec<String> = out
            .invalidation_list
            .map(|l| l.items.unwrap_or_default())
            .unwrap_or_default()
            .into_iter()
            .map(|i| i.id)
            .collect();
        ids.sort();
        ids
    }

    /// The paths of one invalidation, sorted.
    pub fn invalidation_paths(&self, distribution: &str, id: &str) -> Vec<String> {
        let out = self
            .runtime
            .block_on(
                self.client
                    .get_invalidation()
                    .distribution_id(distribution)
                    .id(id)
                    .send(),
            )
            .unwrap_or_else(|e| panic!("GetInvalidation {distribution} {id}: {e:?}"));
        let mut paths = out
            .invalidation
            .expect("an invalidation")
            .invalidation_batch
            .expect("its batch")
            .paths
            .expect("its paths")
            .items
            .unwrap_or_default();
        paths.sort();
        paths
    }
}
