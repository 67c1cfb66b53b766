# Shared by the aksfw azd hooks on Windows, which dot-source it:
# . (Join-Path $PSScriptRoot 'common.ps1')

# An azd environment value, or $Default when it is not set at all (an empty value stays empty).
function Get-EnvValue([string]$Name, [string]$Default = '') {
    $value = (& azd env get-value $Name 2>$null)
    if ($LASTEXITCODE -ne 0) { return $Default }
    return "$value".Trim()
}

# az ARGS --output tsv: the lines (CR and blanks removed); $null when az fails.
function Invoke-AzTsv {
    $out = & az @args --output tsv
    if ($LASTEXITCODE -ne 0) { return $null }
    return , @($out | ForEach-Object { "$_".TrimEnd("`r") } | Where-Object { $_ })
}
