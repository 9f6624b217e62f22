//! The AWS SDK configuration, loaded once per process.
//!
//! Region, credentials and endpoints come from the standard sources: in Lambda, the function's
//! role and region; elsewhere the usual `AWS_*` variables and profiles. `AWS_ENDPOINT_URL`
//! (all services) and `AWS_ENDPOINT_URL_SQS` / `AWS_ENDPOINT_URL_SESV2` (one service) point the
//! clients at an emulator, which is how the tests reach moto.

use aws_config::{BehaviorVersion, SdkConfig};
use tokio::sync::OnceCell;

pub async fn sdk_config() -> SdkConfig {
    static CONFIG: OnceCell<SdkConfig> = OnceCell::const_new();
    CONFIG
        .get_or_init(|| aws_config::defaults(BehaviorVersion::latest()).load())
        .await
        .clone()
}
