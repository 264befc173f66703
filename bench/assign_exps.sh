# assign_exps.sh -- sourced by bench/assign.sh and bench/assign_callgrind.sh
# (needs an admin() function): creates and starts the benchmark's ten
# experiments.
#
# Ten running experiments of the kinds a model team runs side by side;
# every one of them includes user-4242 (coverage 1, targeting it meets), so
# the batch answers ten assignments.
arms2='[{"name":"control","weight":50,"model":"ranker@41","control":true},
        {"name":"treatment","weight":50,"model":"ranker@42"}]'
arms3='[{"name":"control","weight":34,"model":"retrieval@7","control":true},
        {"name":"wide","weight":33,"model":"retrieval@8-wide"},
        {"name":"deep","weight":33,"model":"retrieval@8-deep"}]'
canary='[{"name":"stable","weight":95,"model":"fraud@2024.11","control":true},
         {"name":"canary","weight":5,"model":"fraud@2024.12"}]'
target='[{"attribute":"country","op":"in","values":["de","fr","nl"]},
         {"attribute":"app_version","op":"semver_ge","value":"3.0.0"}]'
defs=(
    "{\"key\":\"exp-0\",\"arms\":$arms2}"
    "{\"key\":\"exp-1\",\"arms\":$arms3}"
    "{\"key\":\"exp-2\",\"strategy\":\"canary\",\"arms\":$canary}"
    "{\"key\":\"exp-3\",\"arms\":$arms2,\"targeting\":$target}"
    "{\"key\":\"exp-4\",\"strategy\":\"bandit\",\"arms\":$arms3}"
    "{\"key\":\"exp-5\",\"arms\":$arms2,\"salt\":\"s5\",\"bucket_version\":2}"
    "{\"key\":\"exp-6\",\"strategy\":\"shadow\",\"arms\":$arms2}"
    "{\"key\":\"exp-7\",\"arms\":$arms3,\"targeting\":$target}"
    "{\"key\":\"exp-8\",\"strategy\":\"canary\",\"arms\":$canary}"
    "{\"key\":\"exp-9\",\"arms\":$arms2,\"forced\":{\"qa-1\":\"treatment\"}}"
)
for i in "${!defs[@]}"; do
    admin POST /v1/experiments "${defs[$i]}"
    admin POST "/v1/experiments/exp-$i/start"
done

