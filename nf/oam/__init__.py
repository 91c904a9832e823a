"""Operations and maintenance: health, readiness, metrics, and the provisioning and care API
(scoped per brand by API key). Never on the SBI port."""
