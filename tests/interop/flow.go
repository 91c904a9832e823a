package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/free5gc/openapi"
	ConvCharging "github.com/free5gc/openapi/chf/ConvCharging"
	"github.com/free5gc/openapi/models"
	SMPolCtrl "github.com/free5gc/openapi/pcf/SMPolCtrl"
)

const (
	chfRoot = "/nchf-convergedcharging/v3"
	pcfRoot = "/npcf-smpolicycontrol/v1"
	// A fixed NF instance id for the SMF (NfInstanceId is a UUID in TS 29.571).
	smfInstanceID = "7f0b6c7e-2d55-4c1e-9a3e-2f4d1c6b8a90"
)

var bitRate = regexp.MustCompile(`^\d+(\.\d+)? (bps|Kbps|Mbps|Gbps|Tbps)$`)

type run struct {
	c    config
	rec  *recorder
	chf  *ConvCharging.APIClient
	pcf  *SMPolCtrl.APIClient
	sum  *Summary
	isn  int32
	lsn  int32
	ref  string
	pid  string
	plmn models.PlmnId
}

func newRun(c config) *run {
	httpClient, rec := newH2CClient(c.timeout)
	chfCfg := ConvCharging.NewConfiguration()
	chfCfg.SetBasePath(c.sbi)
	chfCfg.SetHTTPClient(httpClient)
	chfCfg.SetUserAgent("free5gc-openapi-interop")
	pcfCfg := SMPolCtrl.NewConfiguration()
	pcfCfg.SetBasePath(c.sbi)
	pcfCfg.SetHTTPClient(httpClient)
	pcfCfg.SetUserAgent("free5gc-openapi-interop")
	return &run{
		c: c, rec: rec,
		chf:  ConvCharging.NewAPIClient(chfCfg),
		pcf:  SMPolCtrl.NewAPIClient(pcfCfg),
		sum:  &Summary{Client: "github.com/free5gc/openapi", Subscriber: c.supi, Grants: []int64{}, Probes: map[string]any{}, Observations: []Observation{}},
		plmn: models.PlmnId{Mcc: c.plmn[:3], Mnc: c.plmn[3:]},
	}
}

func (r *run) check(name string, ok bool, format string, args ...any) bool {
	d := ""
	if !ok || format != "" {
		d = fmt.Sprintf(format, args...)
	}
	r.sum.Checks = append(r.sum.Checks, Check{Name: name, OK: ok, Detail: d})
	return ok
}

// answered checks the wire facts every exchange must show: HTTP/2 and the status.
func (r *run) answered(name string, before int, status int) *Exchange {
	ex := r.rec.last(name, before)
	if !r.check(name+".answered", ex != nil, "no HTTP answer recorded") {
		return nil
	}
	r.check(name+".http2", ex.Proto == "HTTP/2.0", "proto %s", ex.Proto)
	r.check(name+".status", ex.Status == status, "got %d, want %d: %s", ex.Status, status,
		string(ex.rawResponse))
	r.wire(ex)
	return ex
}

// wire records header facts free5gc's clients ignore but another peer might not: a 204
// carries no content, so a Content-Type on it describes nothing.
func (r *run) wire(ex *Exchange) {
	if ex != nil && ex.Status == http.StatusNoContent && ex.ContentType != "" {
		r.sum.Observations = append(r.sum.Observations, Observation{ex.Name, "wire",
			"header Content-Type", fmt.Sprintf("204 No Content carries Content-Type %q",
				ex.ContentType)})
	}
}

// observe records what free5gc's model loses from an answer body.
func (r *run) observe(ex *Exchange, model any) []Observation {
	if ex == nil {
		return nil
	}
	obs := roundTrip(ex.Name, ex.rawResponse, model)
	r.sum.Observations = append(r.sum.Observations, obs...)
	return obs
}

func (r *run) ctx(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, r.c.timeout)
}

// ---------------------------------------------------------------------------------------
// Npcf_SMPolicyControl

func (r *run) policyContext(pduSessionID int32) models.Pcf_SMPolCtrl_SmPolicyContextData {
	return models.Pcf_SMPolCtrl_SmPolicyContextData{
		Supi:            r.c.supi,
		PduSessionId:    pduSessionID,
		PduSessionType:  models.PduSessionType_IPV4,
		Dnn:             "internet",
		NotificationUri: r.c.notify + "/pcf/" + fmt.Sprint(pduSessionID),
		AccessType:      models.AccessType_3_GPP_ACCESS,
		RatType:         models.RatType_NR,
		ServingNetwork:  &models.PlmnIdNid{Mcc: r.plmn.Mcc, Mnc: r.plmn.Mnc},
		SliceInfo:       &models.Snssai{Sst: 1, Sd: "000001"},
		SubsSessAmbr:    &models.Ambr{Uplink: "100 Mbps", Downlink: "200 Mbps"},
		SmfId:           smfInstanceID,
		SuppFeat:        "0",
	}
}

var knownTriggers = map[models.Pcf_SMPolCtrl_PolicyControlRequestTrigger]bool{}

func init() {
	for _, t := range []models.Pcf_SMPolCtrl_PolicyControlRequestTrigger{
		models.Pcf_SMPolCtrl_PolicyControlRequestTrigger_PLMN_CH,
		models.Pcf_SMPolCtrl_PolicyControlRequestTrigger_RES_MO_RE,
		models.Pcf_SMPolCtrl_PolicyControlRequestTrigger_AC_TY_CH,
		models.Pcf_SMPolCtrl_PolicyControlRequestTrigger_UE_IP_CH,
		models.Pcf_SMPolCtrl_PolicyControlRequestTrigger_DEF_QOS_CH,
		models.Pcf_SMPolCtrl_PolicyControlRequestTrigger_SE_AMBR_CH,
		models.Pcf_SMPolCtrl_PolicyControlRequestTrigger_US_RE,
		models.Pcf_SMPolCtrl_PolicyControlRequestTrigger_NO_CREDIT,
		models.Pcf_SMPolCtrl_PolicyControlRequestTrigger_RE_TIMEOUT,
		models.Pcf_SMPolCtrl_PolicyControlRequestTrigger_RAT_TY_CH,
		models.Pcf_SMPolCtrl_PolicyControlRequestTrigger_SAREA_CH,
		models.Pcf_SMPolCtrl_PolicyControlRequestTrigger_SCNN_CH,
		models.Pcf_SMPolCtrl_PolicyControlRequestTrigger_USER_LOCATION_CH,
		models.Pcf_SMPolCtrl_PolicyControlRequestTrigger_UE_TZ_CH,
	} {
		knownTriggers[t] = true
	}
}

// decision checks an SmPolicyDecision as free5gc decoded it.
func (r *run) decision(name string, d *models.Pcf_SMPolCtrl_SmPolicyDecision, initial bool) {
	if !r.check(name+".decision", d != nil, "no SmPolicyDecision decoded") {
		return
	}
	r.check(name+".sessRules", len(d.SessRules) > 0, "sessRules missing")
	for id, rule := range d.SessRules {
		n := name + ".sessRules[" + id + "]"
		if !r.check(n+".present", rule != nil, "rule is null") {
			continue
		}
		r.check(n+".sessRuleId", rule.SessRuleId == id, "sessRuleId %q under key %q",
			rule.SessRuleId, id)
		if r.check(n+".authSessAmbr", rule.AuthSessAmbr != nil, "authSessAmbr missing") {
			a := rule.AuthSessAmbr
			r.check(n+".authSessAmbr.bitrates",
				bitRate.MatchString(a.Uplink) && bitRate.MatchString(a.Downlink),
				"uplink %q downlink %q", a.Uplink, a.Downlink)
			r.sum.SessAmbr = map[string]string{"uplink": a.Uplink, "downlink": a.Downlink}
		}
		if rule.AuthDefQos != nil && rule.AuthDefQos.Arp != nil {
			arp := rule.AuthDefQos.Arp
			r.check(n+".authDefQos.arp.enums",
				(arp.PreemptCap == models.PreemptionCapability_NOT_PREEMPT ||
					arp.PreemptCap == models.PreemptionCapability_MAY_PREEMPT) &&
					(arp.PreemptVuln == models.PreemptionVulnerability_NOT_PREEMPTABLE ||
						arp.PreemptVuln == models.PreemptionVulnerability_PREEMPTABLE),
				"preemptCap %q preemptVuln %q", arp.PreemptCap, arp.PreemptVuln)
		}
	}
	for _, t := range d.PolicyCtrlReqTriggers {
		r.check(name+".policyCtrlReqTriggers."+string(t), knownTriggers[t],
			"trigger %q is not a value of free5gc's PolicyControlRequestTrigger", t)
	}
	if initial {
		for id, rule := range d.PccRules {
			if rule == nil {
				continue
			}
			for _, q := range rule.RefQosData {
				_, ok := d.QosDecs[q]
				r.check(name+".pccRules["+id+"].refQosData", ok,
					"refers to qosDecs[%q], which the decision does not carry", q)
			}
			for _, f := range rule.FlowInfos {
				r.check(name+".pccRules["+id+"].flowDirection",
					f.FlowDirection == models.Pcf_SMPolCtrl_FlowDirectionRm_BIDIRECTIONAL ||
						f.FlowDirection == models.Pcf_SMPolCtrl_FlowDirectionRm_UPLINK ||
						f.FlowDirection == models.Pcf_SMPolCtrl_FlowDirectionRm_DOWNLINK ||
						f.FlowDirection == models.Pcf_SMPolCtrl_FlowDirectionRm_UNSPECIFIED,
					"flowDirection %q", f.FlowDirection)
			}
		}
	}
}

func (r *run) pcfCreate(ctx context.Context, pduSessionID int32, name string) (string, bool) {
	c, cancel := r.ctx(ctx)
	defer cancel()
	before := r.rec.count()
	req := &SMPolCtrl.CreateSMPolicyRequest{}
	req.SetRequestBody(r.policyContext(pduSessionID))
	resp, err := r.pcf.SMPoliciesCollectionApi.CreateSMPolicy(c, req)
	ex := r.answered(name, before, http.StatusCreated)
	if !r.check(name+".decoded", err == nil && resp != nil, "generated client: %v", err) {
		return "", false
	}
	r.observe(ex, &models.Pcf_SMPolCtrl_SmPolicyDecision{})
	prefix := r.c.sbi + pcfRoot + "/sm-policies/"
	id := strings.TrimPrefix(resp.Location, prefix)
	r.check(name+".location", strings.HasPrefix(resp.Location, prefix) && id != "" &&
		!strings.Contains(id, "/"), "Location %q is not %s{smPolicyId}", resp.Location, prefix)
	r.decision(name, resp.Pcf_SMPolCtrl_SmPolicyDecision, true)
	if name == "pcf.create" {
		r.sum.PcfLocation = resp.Location
	}
	return id, id != ""
}

func (r *run) pcfGet(ctx context.Context) {
	c, cancel := r.ctx(ctx)
	defer cancel()
	before := r.rec.count()
	req := &SMPolCtrl.GetSMPolicyRequest{}
	req.SetSmPolicyId(r.pid)
	resp, err := r.pcf.IndividualSMPolicyDocumentApi.GetSMPolicy(c, req)
	ex := r.answered("pcf.get", before, http.StatusOK)
	if !r.check("pcf.get.decoded", err == nil && resp != nil && resp.Pcf_SMPolCtrl_SmPolicyControl != nil,
		"generated client: %v", err) {
		return
	}
	r.observe(ex, &models.Pcf_SMPolCtrl_SmPolicyControl{})
	ctl := resp.Pcf_SMPolCtrl_SmPolicyControl
	r.check("pcf.get.context.supi", ctl.Context != nil && ctl.Context.Supi == r.c.supi,
		"context %+v", ctl.Context)
	r.check("pcf.get.context.pduSessionId", ctl.Context != nil &&
		ctl.Context.PduSessionId == int32(r.c.pduSessID), "context %+v", ctl.Context)
	r.check("pcf.get.policy.sessRules", ctl.Policy != nil && len(ctl.Policy.SessRules) > 0,
		"policy %+v", ctl.Policy)
}

func (r *run) pcfUpdate(ctx context.Context) {
	c, cancel := r.ctx(ctx)
	defer cancel()
	before := r.rec.count()
	req := &SMPolCtrl.UpdateSMPolicyRequest{}
	req.SetSmPolicyId(r.pid)
	req.SetRequestBody(models.Pcf_SMPolCtrl_SmPolicyUpdateContextData{
		RepPolicyCtrlReqTriggers: []models.Pcf_SMPolCtrl_PolicyControlRequestTrigger{
			models.Pcf_SMPolCtrl_PolicyControlRequestTrigger_PLMN_CH},
		ServingNetwork: &models.PlmnIdNid{Mcc: r.plmn.Mcc, Mnc: r.plmn.Mnc},
	})
	resp, err := r.pcf.IndividualSMPolicyDocumentApi.UpdateSMPolicy(c, req)
	ex := r.answered("pcf.update", before, http.StatusOK)
	if !r.check("pcf.update.decoded", err == nil && resp != nil, "generated client: %v", err) {
		return
	}
	r.observe(ex, &models.Pcf_SMPolCtrl_SmPolicyDecision{})
	d := resp.Pcf_SMPolCtrl_SmPolicyDecision
	r.check("pcf.update.relCause", d != nil && d.RelCause == "",
		"the association was released at home: %+v", d)
}

func (r *run) pcfDelete(ctx context.Context, id, name string, body *models.Pcf_SMPolCtrl_SmPolicyDeleteData) (int, error) {
	c, cancel := r.ctx(ctx)
	defer cancel()
	before := r.rec.count()
	req := &SMPolCtrl.DeleteSMPolicyRequest{}
	req.SetSmPolicyId(id)
	if body != nil {
		req.SetRequestBody(*body)
	}
	_, err := r.pcf.IndividualSMPolicyDocumentApi.DeleteSMPolicy(c, req)
	ex := r.rec.last(name, before)
	if ex == nil {
		return 0, err
	}
	r.wire(ex)
	return ex.Status, err
}

func (r *run) pcfGone(ctx context.Context) {
	c, cancel := r.ctx(ctx)
	defer cancel()
	before := r.rec.count()
	req := &SMPolCtrl.GetSMPolicyRequest{}
	req.SetSmPolicyId(r.pid)
	_, err := r.pcf.IndividualSMPolicyDocumentApi.GetSMPolicy(c, req)
	ex := r.answered("pcf.get-after-delete", before, http.StatusNotFound)
	var apiErr openapi.GenericOpenAPIError
	if !r.check("pcf.get-after-delete.error", errors.As(err, &apiErr), "error %v", err) {
		return
	}
	m, ok := apiErr.ErrorModel.(SMPolCtrl.GetSMPolicyError)
	if r.check("pcf.get-after-delete.problem", ok && m.ProblemDetails != nil,
		"error model %T", apiErr.ErrorModel) {
		r.check("pcf.get-after-delete.problem.status", m.ProblemDetails.Status == 404,
			"status %d", m.ProblemDetails.Status)
		r.check("pcf.get-after-delete.problem.cause", m.ProblemDetails.Cause != "",
			"no cause")
	}
	if ex != nil {
		r.check("pcf.get-after-delete.content-type",
			strings.HasPrefix(ex.ContentType, "application/problem+json"), "%q", ex.ContentType)
		r.observe(ex, &models.ProblemDetails{})
	}
}

// ---------------------------------------------------------------------------------------
// Nchf_ConvergedCharging

func (r *run) chargingRequest(requested int64, used int64, final bool) models.Chf_ConvCharging_ChargingDataRequest {
	now := time.Now().UTC()
	mu := models.Chf_ConvCharging_MultipleUnitUsage{RatingGroup: int32(r.c.rg)}
	if !final && requested > 0 {
		mu.RequestedUnit = &models.Chf_ConvCharging_RequestedUnit{TotalVolume: int32(requested)}
	}
	if used > 0 || final {
		r.lsn++
		up := used / 4
		trig := models.Chf_ConvCharging_TriggerType_QUOTA_THRESHOLD
		if final {
			trig = models.Chf_ConvCharging_TriggerType_FINAL
		}
		mu.UsedUnitContainer = []models.Chf_ConvCharging_UsedUnitContainer{{
			LocalSequenceNumber: r.lsn,
			TotalVolume:         int32(used),
			UplinkVolume:        int32(up),
			DownlinkVolume:      int32(used - up),
			Triggers: []models.Chf_ConvCharging_Trigger{{
				TriggerType:     trig,
				TriggerCategory: models.Chf_ConvCharging_TriggerCategory_IMMEDIATE_REPORT,
			}},
			TriggerTimestamp: &now,
		}}
	}
	return models.Chf_ConvCharging_ChargingDataRequest{
		SubscriberIdentifier: r.c.supi,
		NfConsumerIdentification: &models.Chf_ConvCharging_NFIdentification{
			NodeFunctionality: models.Chf_ConvCharging_NodeFunctionality_SMF,
			NFName:            smfInstanceID,
			NFPLMNID:          &models.PlmnId{Mcc: r.plmn.Mcc, Mnc: r.plmn.Mnc},
		},
		InvocationTimeStamp:      &now,
		InvocationSequenceNumber: r.isn,
		NotifyUri:                r.c.notify + "/chf",
		MultipleUnitUsage:        []models.Chf_ConvCharging_MultipleUnitUsage{mu},
		PDUSessionChargingInformation: &models.Chf_ConvCharging_PDUSessionChargingInformation{
			ChargingId: int32(7000 + r.c.pduSessID),
			PduSessionInformation: &models.Chf_ConvCharging_PDUSessionInformation{
				PduSessionID:    int32(r.c.pduSessID),
				PduType:         models.PduSessionType_IPV4,
				DnnId:           "internet",
				RatType:         models.RatType_NR,
				ServingCNPlmnId: &models.PlmnId{Mcc: r.plmn.Mcc, Mnc: r.plmn.Mnc},
				NetworkSlicingInfo: &models.Chf_ConvCharging_NetworkSlicingInfo{
					SNSSAI: &models.Snssai{Sst: 1, Sd: "000001"}},
			},
		},
	}
}

// grant checks a ChargingDataResponse and returns the grant for the rating group.
func (r *run) grant(name string, resp *models.Chf_ConvCharging_ChargingDataResponse, requested int64) int64 {
	if !r.check(name+".response", resp != nil, "no ChargingDataResponse decoded") {
		return 0
	}
	r.check(name+".invocationSequenceNumber", resp.InvocationSequenceNumber == r.isn,
		"got %d, want %d", resp.InvocationSequenceNumber, r.isn)
	r.check(name+".invocationTimeStamp", resp.InvocationTimeStamp != nil &&
		!resp.InvocationTimeStamp.IsZero(), "missing")
	var mui *models.Chf_ConvCharging_MultipleUnitInformation
	for i := range resp.MultipleUnitInformation {
		if resp.MultipleUnitInformation[i].RatingGroup == int32(r.c.rg) {
			mui = &resp.MultipleUnitInformation[i]
		}
	}
	if !r.check(name+".multipleUnitInformation", mui != nil, "no entry for rating group %d",
		r.c.rg) {
		return 0
	}
	r.check(name+".resultCode", mui.ResultCode == models.Chf_ConvCharging_ResultCode_SUCCESS,
		"resultCode %q", mui.ResultCode)
	if !r.check(name+".grantedUnit", mui.GrantedUnit != nil, "grantedUnit missing") {
		return 0
	}
	g := int64(mui.GrantedUnit.TotalVolume)
	r.check(name+".grantedUnit.totalVolume", g > 0 && g <= requested,
		"granted %d for %d requested", g, requested)
	if mui.FinalUnitIndication != nil {
		a := mui.FinalUnitIndication.FinalUnitAction
		r.check(name+".finalUnitAction", a == models.Chf_ConvCharging_FinalUnitAction_TERMINATE ||
			a == models.Chf_ConvCharging_FinalUnitAction_REDIRECT ||
			a == models.Chf_ConvCharging_FinalUnitAction_RESTRICT_ACCESS, "%q", a)
	}
	r.sum.Grants = append(r.sum.Grants, g)
	return g
}

func (r *run) chfCreate(ctx context.Context) int64 {
	c, cancel := r.ctx(ctx)
	defer cancel()
	r.isn = 1 // free5gc's int32 with omitempty cannot send 0 (see the isn-zero probe)
	req := &ConvCharging.ChargingdataPostRequest{}
	req.SetRequestBody(r.chargingRequest(int64(r.c.request), 0, false))
	before := r.rec.count()
	resp, err := r.chf.DefaultApi.ChargingdataPost(c, req)
	ex := r.answered("chf.create", before, http.StatusCreated)
	if !r.check("chf.create.decoded", err == nil && resp != nil, "generated client: %v", err) {
		return 0
	}
	r.observe(ex, &models.Chf_ConvCharging_ChargingDataResponse{})
	prefix := r.c.sbi + chfRoot + "/chargingdata/"
	r.ref = strings.TrimPrefix(resp.Location, prefix)
	r.check("chf.create.location", strings.HasPrefix(resp.Location, prefix) && r.ref != "" &&
		!strings.Contains(r.ref, "/"), "Location %q is not %s{ChargingDataRef}", resp.Location,
		prefix)
	r.sum.ChfLocation, r.sum.ChargingDataRef = resp.Location, r.ref
	return r.grant("chf.create", resp.Chf_ConvCharging_ChargingDataResponse, int64(r.c.request))
}

func (r *run) chfUpdate(ctx context.Context, i int, granted int64) int64 {
	c, cancel := r.ctx(ctx)
	defer cancel()
	name := fmt.Sprintf("chf.update%d", i)
	used := min(int64(r.c.usage), granted)
	r.isn++
	req := &ConvCharging.ChargingdataChargingDataRefUpdatePostRequest{}
	req.SetChargingDataRef(r.ref)
	req.SetRequestBody(r.chargingRequest(int64(r.c.request), used, false))
	before := r.rec.count()
	resp, err := r.chf.DefaultApi.ChargingdataChargingDataRefUpdatePost(c, req)
	ex := r.answered(name, before, http.StatusOK)
	if !r.check(name+".decoded", err == nil && resp != nil, "generated client: %v", err) {
		return 0
	}
	r.sum.UsedBytesTotal += used
	r.observe(ex, &models.Chf_ConvCharging_ChargingDataResponse{})
	return r.grant(name, resp.Chf_ConvCharging_ChargingDataResponse, int64(r.c.request))
}

func (r *run) chfRelease(ctx context.Context, name string, used int64, again bool) {
	c, cancel := r.ctx(ctx)
	defer cancel()
	if !again {
		r.isn++
	} else {
		r.lsn-- // the very same request
	}
	body := r.chargingRequest(0, used, true)
	body.RetransmissionIndicator = again
	req := &ConvCharging.ChargingdataChargingDataRefReleasePostRequest{}
	req.SetChargingDataRef(r.ref)
	req.SetRequestBody(body)
	before := r.rec.count()
	resp, err := r.chf.DefaultApi.ChargingdataChargingDataRefReleasePost(c, req)
	ex := r.answered(name, before, http.StatusNoContent)
	r.check(name+".decoded", err == nil && resp != nil, "generated client: %v", err)
	if ex != nil {
		r.check(name+".no-body", len(ex.rawResponse) == 0, "204 with a body %q", ex.rawResponse)
	}
	if err == nil && !again {
		r.sum.UsedBytesTotal += used
	}
}

// chfNotFound updates a charging session that does not exist (or no longer does) and
// checks the 404 decodes as ProblemDetails.
func (r *run) chfNotFound(ctx context.Context, name, ref string) map[string]any {
	c, cancel := r.ctx(ctx)
	defer cancel()
	r.isn++
	req := &ConvCharging.ChargingdataChargingDataRefUpdatePostRequest{}
	req.SetChargingDataRef(ref)
	req.SetRequestBody(r.chargingRequest(int64(r.c.request), 0, false))
	before := r.rec.count()
	_, err := r.chf.DefaultApi.ChargingdataChargingDataRefUpdatePost(c, req)
	ex := r.answered(name, before, http.StatusNotFound)
	var apiErr openapi.GenericOpenAPIError
	if !r.check(name+".error", errors.As(err, &apiErr) && apiErr.ErrorStatus == 404,
		"error %v", err) {
		return nil
	}
	m, ok := apiErr.ErrorModel.(ConvCharging.ChargingdataChargingDataRefUpdatePostError)
	union := m.Chf_ConvCharging_ChargingDataResponseOrProblem
	if r.check(name+".decoded", ok && union != nil, "error model %T", apiErr.ErrorModel) {
		r.check(name+".union.status", union.Status == 404, "status %d", union.Status)
	}
	ct := ""
	if ex != nil {
		ct = ex.ContentType
		r.check(name+".content-type", strings.HasPrefix(ct, "application/problem+json"),
			"%q", ct)
	}
	var pd models.ProblemDetails
	if !r.check(name+".problemDetails", openapi.Deserialize(&pd, apiErr.RawBody, ct) == nil,
		"body does not decode as ProblemDetails: %s", apiErr.RawBody) {
		return nil
	}
	r.observe(ex, &models.ProblemDetails{})
	r.check(name+".problemDetails.status", pd.Status == 404, "status %d", pd.Status)
	r.check(name+".problemDetails.cause", pd.Cause != "", "no cause")
	return map[string]any{"status": pd.Status, "cause": pd.Cause, "title": pd.Title,
		"detail": pd.Detail}
}

// ---------------------------------------------------------------------------------------
// Probes: what happens at the edges of free5gc's models.

// isnZero opens a session with invocationSequenceNumber 0, which free5gc's int32 +
// omitempty leaves out of the body. TS 32.291 makes the IE mandatory: the NF must refuse
// with 400 and a ProblemDetails, never open a session without it.
func (r *run) isnZero(ctx context.Context) {
	c, cancel := r.ctx(ctx)
	defer cancel()
	saved := r.isn
	r.isn = 0
	body := r.chargingRequest(int64(r.c.request), 0, false)
	r.isn = saved
	body.PDUSessionChargingInformation.ChargingId++ // another session than the real one
	req := &ConvCharging.ChargingdataPostRequest{}
	req.SetRequestBody(body)
	before := r.rec.count()
	_, err := r.chf.DefaultApi.ChargingdataPost(c, req)
	ex := r.answered("probe.isn-zero", before, http.StatusBadRequest)
	probe := map[string]any{"error": fmt.Sprint(err)}
	if ex != nil {
		probe["status"] = ex.Status
		probe["sentInvocationSequenceNumber"] = strings.Contains(string(ex.rawRequest),
			`"invocationSequenceNumber"`)
		var pd models.ProblemDetails
		if openapi.Deserialize(&pd, ex.rawResponse, ex.ContentType) == nil {
			probe["cause"] = pd.Cause
			params := []string{}
			for _, p := range pd.InvalidParams {
				params = append(params, p.Param)
			}
			probe["invalidParams"] = params
			r.check("probe.isn-zero.cause", pd.Cause != "", "no cause in %s", ex.rawResponse)
		}
	}
	r.sum.Probes["isnZero"] = probe
}

// deleteWithoutBody deletes a second SM policy the way the generated client does when
// the caller gives no SmPolicyDeleteData: it still sends Content-Type application/json
// with the body `null`. Recorded, not judged; the association is cleaned up either way.
func (r *run) deleteWithoutBody(ctx context.Context) {
	id, ok := r.pcfCreate(ctx, int32(r.c.pduSessID+1), "probe.pcf.create2")
	if !ok {
		return
	}
	status, err := r.pcfDelete(ctx, id, "probe.pcf.delete-null-body", nil)
	probe := map[string]any{"status": status, "error": fmt.Sprint(err)}
	if status != http.StatusNoContent {
		st, err2 := r.pcfDelete(ctx, id, "probe.pcf.delete-cleanup",
			&models.Pcf_SMPolCtrl_SmPolicyDeleteData{})
		probe["cleanupStatus"] = st
		r.check("probe.pcf.delete-cleanup", st == http.StatusNoContent, "status %d: %v", st,
			err2)
	}
	r.sum.Probes["pcfDeleteNullBody"] = probe
}

// ---------------------------------------------------------------------------------------

func (r *run) flow(ctx context.Context) {
	id, ok := r.pcfCreate(ctx, int32(r.c.pduSessID), "pcf.create")
	if !ok {
		return
	}
	r.pid = id
	r.sum.SmPolicyID = id
	r.pcfGet(ctx)

	granted := r.chfCreate(ctx)
	if granted <= 0 {
		return
	}
	for i := 1; i <= r.c.updates; i++ {
		if granted = r.chfUpdate(ctx, i, granted); granted <= 0 {
			return
		}
	}
	r.sum.UnknownRef = r.chfNotFound(ctx, "chf.update-unknown-ref",
		"unknown-"+fmt.Sprint(time.Now().UnixNano()))
	last := min(int64(r.c.usage)/2, granted)
	r.chfRelease(ctx, "chf.release", last, false)
	r.chfRelease(ctx, "chf.release-retransmitted", last, true)
	r.chfNotFound(ctx, "chf.update-after-release", r.ref)

	r.pcfUpdate(ctx)
	status, err := r.pcfDelete(ctx, r.pid, "pcf.delete",
		&models.Pcf_SMPolCtrl_SmPolicyDeleteData{
			ServingNetwork: &models.PlmnIdNid{Mcc: r.plmn.Mcc, Mnc: r.plmn.Mnc}})
	r.check("pcf.delete.status", status == http.StatusNoContent, "status %d: %v", status, err)
	if ex := r.rec.last("pcf.delete", 0); ex != nil {
		r.check("pcf.delete.http2", ex.Proto == "HTTP/2.0", "proto %s", ex.Proto)
	}
	r.pcfGone(ctx)

	r.isnZero(ctx)
	r.deleteWithoutBody(ctx)
}
