package translator

import (
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// processGatewayClasses accepts every GatewayClass whose controllerName is Strait's and returns
// them by name. Classes of other controllers get no status from Strait.
func (t *translation) processGatewayClasses(ci *clusterIndex) map[string]*gwapiv1.GatewayClass {
	classes := map[string]*gwapiv1.GatewayClass{}
	for _, gc := range ci.res.GatewayClasses {
		if gc.Spec.ControllerName != ControllerName {
			continue
		}
		st := statusOf[gwapiv1.GatewayClassStatus](t, ci.info.Name, "GatewayClass", gc)
		if gc.Spec.ParametersRef != nil {
			// Strait has no GatewayClass parameters yet; a class that asks for them would not
			// get what it asked for.
			setCondition(&st.Conditions, gc.Generation, string(gwapiv1.GatewayClassConditionStatusAccepted), false,
				string(gwapiv1.GatewayClassReasonInvalidParameters), "Strait GatewayClasses take no parametersRef")
			continue
		}
		setCondition(&st.Conditions, gc.Generation, string(gwapiv1.GatewayClassConditionStatusAccepted), true,
			string(gwapiv1.GatewayClassReasonAccepted), "Accepted by "+ControllerName)
		setCondition(&st.Conditions, gc.Generation, string(gwapiv1.GatewayClassConditionStatusSupportedVersion), true,
			string(gwapiv1.GatewayClassReasonSupportedVersion), "Gateway API CRDs of a supported version")
		st.SupportedFeatures = supportedFeatures()
		classes[gc.Name] = gc
	}
	return classes
}
